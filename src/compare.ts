import { throwIfAborted, validateSignal, withAbort } from './abort.js';
import { readCursor, streamFromReadTransaction } from './cursor.js';
import { type Database, type Queryable, withReadTransaction } from './database.js';
import {
  DatabaseError,
  DifferentLocationsError,
  InvalidInputError,
  JobNotFoundError,
  JobNotSuccessfulError,
  NoPreviousJobError,
  OrcaReconcileError,
} from './errors.js';
import { type ReportRows, positiveInteger, toRow, validateKind } from './read-report.js';
import { CURRENT_PREFIX, PREVIOUS_PREFIX, changeCountsSql, declareChangesCursorSql, jobPairSql } from './sql/compare.js';
import { REPORT_KINDS, type ReportKind } from './sql/reports.js';
import { type QuotedSchema, schemaOf } from './sql/schema.js';
import { OrcaStatus } from './status.js';
import type { SchemaOptions } from './types.js';
import { describe, readArgument, requireObject, validateJobId } from './validation.js';

/**
 * What happened to a discrepancy between two runs of a bucket's reconciliation:
 * - `new`: in the job's report, not in the previous job's;
 * - `resolved`: in the previous job's report, no longer in the job's;
 * - `unchanged`: in both (for a mismatch, with the same `discrepancyType`);
 * - `changed`: a mismatch in both whose `discrepancyType` differs (say `etag` before,
 *   `etag, size_in_bytes` now). Phantoms and orphans are never `changed`.
 *
 * @example
 * ```ts
 * import { compareJobs, type ChangeType } from 'orca-reconcile';
 *
 * const wanted: ChangeType[] = ['new', 'changed'];
 * for await (const change of compareJobs(pool, { jobId: 42 }, { changes: wanted })) console.log(change.change, change.keyPath);
 * ```
 * @category Reports
 */
export type ChangeType = 'new' | 'resolved' | 'unchanged' | 'changed';

/** Every change type, in the order the summary lists them. */
export const CHANGE_TYPES: readonly ChangeType[] = ['new', 'resolved', 'unchanged', 'changed'];

/** What {@link compareJobs} reads when no `changes` option is given: everything but `unchanged`. */
export const DEFAULT_CHANGES: readonly ChangeType[] = ['new', 'resolved', 'changed'];

/**
 * A discrepancy found by the job and not by the previous job. `current` is the job's report row.
 *
 * @example
 * ```ts
 * import { compareJobs } from 'orca-reconcile';
 *
 * for await (const change of compareJobs(pool, { jobId: 42 }, { kinds: ['phantom'], changes: ['new'] })) {
 *   if (change.change === 'new') console.log(`${change.current.granuleId}: ${change.keyPath} went missing from S3`);
 * }
 * ```
 * @category Reports
 */
export interface NewDiscrepancy<K extends ReportKind> {
  kind: K;
  change: 'new';
  /** The key the two reports are matched on. */
  keyPath: string;
  /** The row of the job's report. */
  current: ReportRows[K];
  previous?: undefined;
}

/**
 * A discrepancy found by the previous job and no longer by the job. `previous` is the previous
 * job's report row.
 *
 * @example
 * ```ts
 * import { compareJobs } from 'orca-reconcile';
 *
 * for await (const change of compareJobs(pool, { jobId: 42 }, { changes: ['resolved'] })) {
 *   if (change.change === 'resolved') console.log(`${change.keyPath} fixed since job ${change.previous.jobId}`);
 * }
 * ```
 * @category Reports
 */
export interface ResolvedDiscrepancy<K extends ReportKind> {
  kind: K;
  change: 'resolved';
  /** The key the two reports are matched on. */
  keyPath: string;
  current?: undefined;
  /** The row of the previous job's report. */
  previous: ReportRows[K];
}

/**
 * A discrepancy both jobs found: `unchanged`, or for a mismatch whose `discrepancyType` differs,
 * `changed`. Both rows are given, so any other column that moved (an etag, a size) shows too.
 *
 * @example
 * ```ts
 * import { compareJobs } from 'orca-reconcile';
 *
 * for await (const change of compareJobs(pool, { jobId: 42 }, { kinds: ['mismatch'], changes: ['changed'] })) {
 *   if (change.kind === 'mismatch' && change.change === 'changed') {
 *     console.log(`${change.keyPath}: ${change.previous.discrepancyType} -> ${change.current.discrepancyType}`);
 *   }
 * }
 * ```
 * @category Reports
 */
export interface PersistingDiscrepancy<K extends ReportKind> {
  kind: K;
  change: K extends 'mismatch' ? 'unchanged' | 'changed' : 'unchanged';
  /** The key the two reports are matched on. */
  keyPath: string;
  /** The row of the job's report. */
  current: ReportRows[K];
  /** The row of the previous job's report. */
  previous: ReportRows[K];
}

/**
 * One row of {@link compareJobs}: a discrepancy of one report (`kind`) and what happened to it
 * between the previous job and the job (`change`), with the report row of each job that has it.
 * Checking `kind` and `change` narrows the type: `current` is there unless the change is
 * `resolved`, `previous` unless it is `new`.
 *
 * @example
 * ```ts
 * import { compareJobs, type ReportChange } from 'orca-reconcile';
 *
 * const describeChange = (row: ReportChange): string => {
 *   switch (row.change) {
 *     case 'new':
 *       return `new ${row.kind}: ${row.keyPath}`;
 *     case 'resolved':
 *       return `resolved ${row.kind}: ${row.keyPath}`;
 *     default:
 *       return `${row.change} ${row.kind}: ${row.keyPath}`;
 *   }
 * };
 * for await (const row of compareJobs(pool, { jobId: 42 })) console.log(describeChange(row));
 * ```
 * @category Reports
 */
export type ReportChange<K extends ReportKind = ReportKind> = K extends ReportKind
  ? NewDiscrepancy<K> | ResolvedDiscrepancy<K> | PersistingDiscrepancy<K>
  : never;

/**
 * Which two jobs to compare: `jobId` and `previousJobId`, by default the job's previous run (the
 * highest id below `jobId` of the same bucket with status success).
 *
 * @example
 * ```ts
 * import { summarizeJobChanges, type JobComparison } from 'orca-reconcile';
 *
 * const sinceLastRun: JobComparison = { jobId: 42 };
 * const sinceJob30: JobComparison = { jobId: 42, previousJobId: 30 };
 * console.log(await summarizeJobChanges(pool, sinceLastRun), await summarizeJobChanges(pool, sinceJob30));
 * ```
 * @category Reports
 */
export interface JobComparison {
  /** The newer job. */
  jobId: number;
  /** The older job, lower than `jobId`; by default the job's previous successful job of the bucket. */
  previousJobId?: number;
}

/**
 * The two jobs a comparison settled on, once both are checked.
 *
 * @example
 * ```ts
 * import { compareJobs, type ComparedJobs } from 'orca-reconcile';
 *
 * const onJobs = (jobs: ComparedJobs) => console.error(`job ${jobs.jobId} against job ${jobs.previousJobId} of ${jobs.orcaArchiveLocation}`);
 * for await (const row of compareJobs(pool, { jobId: 42 }, { onJobs })) console.log(row.change, row.keyPath);
 * ```
 * @category Reports
 */
export interface ComparedJobs {
  jobId: number;
  previousJobId: number;
  /** The bucket of both jobs. */
  orcaArchiveLocation: string;
}

/**
 * Options of {@link compareJobs}.
 *
 * @example
 * ```ts
 * import { compareJobs } from 'orca-reconcile';
 *
 * const rows = compareJobs(pool, { jobId: 42 }, { kinds: ['mismatch'], changes: ['new', 'changed'], batchSize: 5000 });
 * for await (const row of rows) console.log(row.change, row.keyPath);
 * ```
 * @category Reports
 */
export interface CompareJobsOptions extends SchemaOptions {
  /** The reports to compare. Default all three; rows come in the order phantom, orphan, mismatch. */
  kinds?: readonly ReportKind[];
  /** The changes to return. Default `new`, `resolved` and `changed`: `unchanged` only when asked for. */
  changes?: readonly ChangeType[];
  /** Rows fetched from the server at a time. Default 1000, at most 100000. */
  batchSize?: number;
  /** Called once with the two jobs, after they are checked and before the first row. */
  onJobs?: (jobs: ComparedJobs) => void;
  /**
   * Stops the read: the statement running on the server is cancelled, the transaction rolls
   * back, the connection is released, and the loop rejects with {@link AbortError}.
   */
  signal?: AbortSignal;
}

/**
 * Options of {@link summarizeJobChanges}.
 *
 * @example
 * ```ts
 * import { summarizeJobChanges } from 'orca-reconcile';
 *
 * const summary = await summarizeJobChanges(pool, { jobId: 42 }, { schema: 'orca', signal: AbortSignal.timeout(30_000) });
 * ```
 * @category Reports
 */
export interface SummarizeJobChangesOptions extends SchemaOptions {
  /**
   * Stops the count: the statement running on the server is cancelled, the transaction rolls
   * back, the connection is released, and {@link AbortError} is thrown.
   */
  signal?: AbortSignal;
}

/**
 * Counts of the changes in one report: the phantom or orphan part of a {@link JobChangeSummary}
 * (the mismatch part adds `changed`).
 *
 * @example
 * ```ts
 * import { summarizeJobChanges, type ChangeCounts } from 'orca-reconcile';
 *
 * const moved = (counts: ChangeCounts) => counts.new + counts.resolved;
 * const { phantoms, orphans } = await summarizeJobChanges(pool, { jobId: 42 });
 * console.log(`${moved(phantoms)} phantoms and ${moved(orphans)} orphans came or went`);
 * ```
 * @category Reports
 */
export interface ChangeCounts {
  new: number;
  resolved: number;
  unchanged: number;
}

/**
 * What {@link summarizeJobChanges} resolves to: the job the comparison was made with, and per
 * report the number of discrepancies that are new, resolved, unchanged and (mismatches only)
 * changed.
 *
 * @example
 * ```ts
 * import { summarizeJobChanges, type JobChangeSummary } from 'orca-reconcile';
 *
 * const summary: JobChangeSummary = await summarizeJobChanges(pool, { jobId: 42 });
 * if (summary.phantoms.new > 0) console.warn(`${summary.phantoms.new} files went missing since job ${summary.previousJobId}`);
 * ```
 * @category Reports
 */
export interface JobChangeSummary {
  /** The job compared with: `previousJobId` as given, or the one found. */
  previousJobId: number;
  phantoms: ChangeCounts;
  orphans: ChangeCounts;
  mismatches: ChangeCounts & { changed: number };
}

/**
 * Streams what changed in a bucket's reports between two successful jobs: per report, each
 * discrepancy that is new, resolved, still present (`unchanged`) or, for a mismatch whose
 * `discrepancyType` differs, `changed` (see {@link ChangeType}). By default the job is compared
 * with its previous run, the highest job id below it of the same bucket with status success;
 * `previousJobId` names another. By default `unchanged` rows are left out (`changes`).
 *
 * Phantoms, orphans and mismatches are matched on key_path. Rows come report by report (phantom,
 * orphan, mismatch) and within a report in key_path order, byte-wise, as {@link ReportChange}
 * rows with the report row of each job that has the discrepancy, int8 columns as `bigint`.
 *
 * The jobs are checked and both reports read in one read-only transaction, one snapshot, each
 * report through a server-side cursor whose rows are matched by the server: memory stays flat
 * whatever the reports' size. Breaking out of the loop closes the cursor. The connection rules of
 * {@link readReport} hold here too.
 *
 * Refused, on the first iteration, with a {@link JobNotFoundError} (either job does not exist),
 * {@link JobNotSuccessfulError} (either job's status is not success), {@link NoPreviousJobError}
 * (no `previousJobId` given and no earlier successful job of the bucket) or
 * {@link DifferentLocationsError} (the jobs are of two buckets); bad arguments are an
 * {@link InvalidInputError} naming the field. Aborting `signal` ends the loop with
 * {@link AbortError}.
 *
 * @example
 * ```ts
 * import { compareJobs } from 'orca-reconcile';
 *
 * for await (const change of compareJobs(pool, { jobId: 42 })) {
 *   if (change.change === 'new') console.log(`new ${change.kind}: ${change.keyPath}`);
 *   else if (change.change === 'resolved') console.log(`resolved ${change.kind}: ${change.keyPath}`);
 *   else if (change.kind === 'mismatch') console.log(`${change.keyPath}: ${change.previous.discrepancyType} -> ${change.current.discrepancyType}`);
 * }
 * ```
 * @category Reports
 */
export async function* compareJobs(
  database: Database,
  comparison: JobComparison,
  options: CompareJobsOptions = {},
): AsyncGenerator<ReportChange, void, undefined> {
  const { jobId, previousJobId } = validateComparison(comparison);
  const schema = schemaOf({ schema: readArgument(options, 'schema', 'schema') });
  const kinds = validateKinds(readArgument(options, 'kinds', 'kinds'));
  const changes = validateChanges(readArgument(options, 'changes', 'changes'));
  const batchSize = positiveInteger(readArgument(options, 'batchSize', 'batchSize') ?? 1000, 'batchSize', 100_000);
  const onJobs = readArgument(options, 'onJobs', 'onJobs');
  if (onJobs !== undefined && typeof onJobs !== 'function') {
    throw new InvalidInputError('onJobs', `onJobs must be a function, got ${describe(onJobs)}`);
  }
  const signal = validateSignal(readArgument(options, 'signal', 'signal'));
  throwIfAborted(signal, 'compare jobs');

  // The callback's own failure ends the read and is thrown as it is, not as a DatabaseError.
  let callbackFailure: { error: unknown } | undefined;
  yield* streamFromReadTransaction<ReportChange>(database, 'compare jobs', signal, async (tx, emit) => {
    const jobs = await checkJobs(tx, schema, jobId, previousJobId);
    try {
      (onJobs as CompareJobsOptions['onJobs'])?.(jobs);
    } catch (error) {
      callbackFailure = { error };
      return;
    }
    for (const kind of kinds) {
      const values = [jobs.jobId, jobs.previousJobId, changes];
      const declare = (cursor: string) => declareChangesCursorSql(schema, kind, cursor);
      const read = await readCursor(tx, declare, values, batchSize, (raw) => toChange(kind, raw), emit);
      if (!read) return;
    }
  });
  if (callbackFailure) throw callbackFailure.error;
}

/** The operation a failure of {@link summarizeJobChanges} names. */
const SUMMARIZE = 'summarize job changes';

/**
 * Counts what changed in a bucket's reports between two successful jobs, chosen as
 * {@link compareJobs} chooses them: per report, the discrepancies that are new, resolved and
 * unchanged, and for mismatches those whose `discrepancyType` changed. The counts are computed
 * by the server in one statement, in the same read-only transaction that checks the jobs. The
 * same refusals as {@link compareJobs}; aborting `signal` cancels the statement on the server and
 * throws {@link AbortError}.
 *
 * @example
 * ```ts
 * import { summarizeJobChanges } from 'orca-reconcile';
 *
 * const { previousJobId, phantoms, orphans, mismatches } = await summarizeJobChanges(pool, { jobId: 42 });
 * console.log(`since job ${previousJobId}: ${phantoms.new} new phantoms, ${phantoms.resolved} resolved`);
 * console.log(`${orphans.new} new orphans; ${mismatches.changed} mismatches changed their discrepancy type`);
 * ```
 * @category Reports
 */
export async function summarizeJobChanges(
  database: Database,
  comparison: JobComparison,
  options: SummarizeJobChangesOptions = {},
): Promise<JobChangeSummary> {
  const { jobId, previousJobId } = validateComparison(comparison);
  const schema = schemaOf({ schema: readArgument(options, 'schema', 'schema') });
  const signal = validateSignal(readArgument(options, 'signal', 'signal'));
  throwIfAborted(signal, SUMMARIZE);
  try {
    return await withReadTransaction(database, (client) => withAbort(client, signal, SUMMARIZE, async (tx) => {
      const jobs = await checkJobs(tx, schema, jobId, previousJobId);
      const { rows } = await tx.query(changeCountsSql(schema, REPORT_KINDS), [jobs.jobId, jobs.previousJobId]);
      const count = (kind: ReportKind, change: ChangeType): number => {
        const row = (rows as { kind: string; change: string; count: number | string | bigint }[]).find(
          (candidate) => candidate.kind === kind && candidate.change === change,
        );
        return row === undefined ? 0 : Number(row.count);
      };
      const counts = (kind: ReportKind): ChangeCounts => ({
        new: count(kind, 'new'),
        resolved: count(kind, 'resolved'),
        unchanged: count(kind, 'unchanged'),
      });
      return {
        previousJobId: jobs.previousJobId,
        phantoms: counts('phantom'),
        orphans: counts('orphan'),
        mismatches: { ...counts('mismatch'), changed: count('mismatch', 'changed') },
      };
    }));
  } catch (error) {
    throw error instanceof OrcaReconcileError ? error : new DatabaseError(SUMMARIZE, error);
  }
}

function validateComparison(comparison: unknown): { jobId: number; previousJobId: number | undefined } {
  requireObject(comparison, 'comparison', 'an object with jobId and optionally previousJobId');
  const jobId = validateJobId(readArgument(comparison, 'jobId', 'jobId'));
  const previous = readArgument(comparison, 'previousJobId', 'previousJobId');
  if (previous === undefined) return { jobId, previousJobId: undefined };
  const previousJobId = validateJobId(previous, 'previousJobId');
  if (previousJobId >= jobId) {
    throw new InvalidInputError('previousJobId', `previousJobId must be lower than jobId (${jobId}), got ${previousJobId}`);
  }
  return { jobId, previousJobId };
}

/** A non-empty list of distinct values, each checked by `check`, in the order of `all`. */
function validateSubset<T extends string>(value: unknown, field: string, all: readonly T[], check: (item: unknown) => T): T[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidInputError(field, `${field} must be a non-empty array of ${all.join(', ')}, got ${describe(value)}`);
  }
  const chosen = new Set(value.map(check));
  return all.filter((item) => chosen.has(item));
}

function validateKinds(value: unknown): ReportKind[] {
  if (value === undefined) return [...REPORT_KINDS];
  return validateSubset(value, 'kinds', REPORT_KINDS, (item) => validateKind(item, 'kinds'));
}

function validateChanges(value: unknown): ChangeType[] {
  if (value === undefined) return [...DEFAULT_CHANGES];
  return validateSubset(value, 'changes', CHANGE_TYPES, (item) => {
    if (typeof item !== 'string' || !(CHANGE_TYPES as readonly string[]).includes(item)) {
      throw new InvalidInputError('changes', `changes must hold only ${CHANGE_TYPES.join(', ')}, got ${describe(item)}`);
    }
    return item as ChangeType;
  });
}

/**
 * Reads both jobs and checks that they can be compared: both exist, have status success and
 * belong to one bucket. Without `previousJobId`, the previous job is the bucket's highest
 * successful job below `jobId`.
 */
async function checkJobs(tx: Queryable, schema: QuotedSchema, jobId: number, previousJobId: number | undefined): Promise<ComparedJobs> {
  const { rows } = await tx.query(jobPairSql(schema, previousJobId !== undefined), previousJobId === undefined ? [jobId] : [jobId, previousJobId]);
  const row = rows[0] as
    | {
        status_id: number;
        orca_archive_location: string;
        previous_id: number | string | bigint | null;
        previous_status_id: number | null;
        previous_orca_archive_location: string | null;
      }
    | undefined;
  if (!row) throw new JobNotFoundError(jobId);
  if (Number(row.status_id) !== OrcaStatus.Success) throw new JobNotSuccessfulError(jobId, Number(row.status_id));
  if (row.previous_id === null || row.previous_orca_archive_location === null) {
    if (previousJobId === undefined) throw new NoPreviousJobError(jobId, row.orca_archive_location);
    throw new JobNotFoundError(previousJobId);
  }
  const previous = Number(row.previous_id);
  if (row.previous_orca_archive_location !== row.orca_archive_location) {
    throw new DifferentLocationsError(jobId, row.orca_archive_location, previous, row.previous_orca_archive_location);
  }
  if (Number(row.previous_status_id) !== OrcaStatus.Success) throw new JobNotSuccessfulError(previous, Number(row.previous_status_id));
  return { jobId, previousJobId: previous, orcaArchiveLocation: row.orca_archive_location };
}

/** A row of the changes cursor as a typed change: each side's row when it has one. */
function toChange(kind: ReportKind, raw: Record<string, unknown>): ReportChange {
  const change = String(raw['change']) as ChangeType;
  const keyPath = String(raw['key_path']);
  const current = change === 'resolved' ? undefined : toRow(kind, raw, CURRENT_PREFIX);
  const previous = change === 'new' ? undefined : toRow(kind, raw, PREVIOUS_PREFIX);
  return { kind, change, keyPath, ...(current && { current }), ...(previous && { previous }) } as ReportChange;
}
