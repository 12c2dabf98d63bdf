import { StaleInventoryError } from './errors.js';
import { validateSignal } from './abort.js';
import type { Database, Queryable } from './database.js';
import { deadlineOf } from './deadline.js';
import { checkListing, checkNewest, guardedTransaction } from './guard.js';
import type { Backoff } from './retry.js';
import {
  REPORT_KINDS,
  deleteReportSql,
  reportCountsSql,
  storageClassArraysSql,
  writeReportsSql,
} from './sql/reports.js';
import { type QuotedSchema, schemaOf } from './sql/schema.js';
import type { Logger, SchemaOptions } from './types.js';
import { validateArchiveLocation, validateCallback, validateJobId } from './validation.js';
import { finishRunIn, validateConcurrency, validatePieces } from './pieces.js';
import { type RunProgress, piecedRun } from './run.js';

/**
 * Which job's reports to write, and for which archive bucket.
 *
 * @example
 * ```ts
 * import { generateReports, type ReportTarget } from 'orca-reconcile';
 *
 * const target: ReportTarget = { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' };
 * await generateReports(pool, target);
 * ```
 * @category Reconcile
 */
export interface ReportTarget {
  /** Id of the `reconcile_job` row the reports belong to. */
  jobId: number;
  /** Name of the ORCA archive bucket whose catalog and inventory are compared. */
  orcaArchiveLocation: string;
}

/**
 * Number of rows written to each report.
 *
 * @example
 * ```ts
 * import { generateReports } from 'orca-reconcile';
 *
 * const { phantoms, orphans, mismatches } = await generateReports(pool, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' });
 * if (phantoms + orphans + mismatches > 0) console.warn('the archive and its catalog disagree');
 * ```
 * @category Reconcile
 */
export interface ReportCounts {
  phantoms: number;
  orphans: number;
  mismatches: number;
}

/**
 * Options of {@link generateReports}.
 *
 * @example
 * ```ts
 * import { generateReports } from 'orca-reconcile';
 *
 * await generateReports(pool, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' }, {
 *   schema: 'orca',
 *   retry: { maxRetries: 5, backoffInSeconds: 2 },
 *   logger: console,
 *   deadline: Date.now() + 10 * 60_000, // give up after ten minutes
 * });
 * ```
 * @category Reconcile
 */
export interface GenerateReportsOptions extends SchemaOptions, PieceOptions {
  /** Backoff for transient database errors. Only transient errors are ever retried. */
  retry?: Backoff;
  /** Retries are logged at `warn`; a pieced run logs its plan and every finished piece at `info`. */
  logger?: Pick<Logger, 'warn'> & Partial<Pick<Logger, 'info'>>;
  /**
   * Stops the work when aborted: the statement running on the server is cancelled, the
   * transaction rolls back, the connection is released, and {@link AbortError} is thrown.
   */
  signal?: AbortSignal;
  /**
   * Epoch milliseconds by which the work must end. Statements and lock waits are cut off at that
   * time, no retry starts after it, and a {@link TimeoutError} is thrown.
   */
  deadline?: number;
}

/**
 * How a job's comparison is divided, for {@link generateReports}, {@link task} and
 * {@link createHandler}. Pieced runs need the library's progress tables
 * ({@link createProgressTables}).
 *
 * @example
 * ```ts
 * import { generateReports } from 'orca-reconcile';
 *
 * // 'auto': the single statement for a small bucket, about 250,000 files per piece above 3 million.
 * await generateReports(pool, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' }, { pieces: 'auto', concurrency: 2 });
 * ```
 * @category Reconcile
 */
export interface PieceOptions {
  /**
   * Pieces to divide the comparison into: a whole number from 1 to 1024, or `'auto'` (the single
   * statement below 3 million files, else one piece per 250,000 files, from the planner's
   * estimate of the listing's size). Default: none, the single statement. A run that continues
   * an unfinished one keeps the count that one was planned with.
   */
  pieces?: number | 'auto';
  /** Pieces compared at once, each on a connection of its own from the pool. Default 1. */
  concurrency?: number;
  /** Hears how far a pieced run has got: once planned, then after every piece. */
  onProgress?: (progress: RunProgress) => void;
}

type Count = number | string | bigint;

/**
 * Replaces the job's reports with fresh ones, inside the caller's transaction (which must hold
 * the job's lock): refuses a partition that holds another job's listing, deletes the job's
 * earlier report rows, then writes the new ones. Readers see the old set or the new set, never
 * a mix.
 */
export async function replaceReports(
  tx: Queryable,
  jobId: number,
  orcaArchiveLocation: string,
  schema: QuotedSchema,
): Promise<ReportCounts> {
  await checkListing(tx, schema, jobId, orcaArchiveLocation);

  for (const kind of REPORT_KINDS) await tx.query(deleteReportSql(schema, kind), [jobId]);
  const classes = await tx.query(storageClassArraysSql(schema));
  const { ids, names } = classes.rows[0] as { ids: unknown; names: unknown };
  const { rows } = await tx.query(writeReportsSql(schema), [jobId, orcaArchiveLocation, ids, names]);
  const row = rows[0] as Record<keyof ReportCounts | 'foreign_job_id', Count | null>;
  if (row.foreign_job_id !== null) {
    // A partition mixing listings: the rows written above roll back with the transaction.
    throw new StaleInventoryError(jobId, Number(row.foreign_job_id), orcaArchiveLocation);
  }
  // A newer job committed while the statement ran may have emptied the partition before the
  // statement read it (TRUNCATE is not MVCC-safe). The job row it made is visible now: refuse,
  // and the rows written above roll back.
  await checkNewest(tx, schema, jobId, orcaArchiveLocation);
  return toCounts(row);
}

/** Row counts of the reports already stored for a job. */
export async function readReportCounts(tx: Queryable, schema: QuotedSchema, jobId: number): Promise<ReportCounts> {
  const { rows } = await tx.query(reportCountsSql(schema), [jobId]);
  return toCounts(rows[0] as Record<keyof ReportCounts, Count>);
}

function toCounts(row: Record<keyof ReportCounts, Count | null>): ReportCounts {
  return { phantoms: Number(row.phantoms), orphans: Number(row.orphans), mismatches: Number(row.mismatches) };
}

/**
 * Compares the ORCA catalog with the S3 inventory listing of one archive bucket and writes the
 * phantom, orphan and mismatch reports of a job, all in one transaction, or in pieces with the
 * `pieces` option (see below). Any reports the job
 * already had are replaced in that same transaction, so running it again is safe. Concurrent
 * calls for one job take turns on a transaction-scoped advisory lock. Transient database errors
 * (lost connection, serialization failure, deadlock, ...) are retried; anything else is thrown
 * at once.
 *
 * Before writing, the same transaction checks that the job exists ({@link JobNotFoundError}),
 * belongs to `orcaArchiveLocation` ({@link LocationMismatchError}), has its listing loaded
 * ({@link InventoryNotLoadedError}) and that the bucket's inventory rows are this job's
 * ({@link StaleInventoryError}). Job statuses are left alone: {@link task} manages them.
 *
 * `database` is a `pg` Pool, Client or PoolClient, or a PGlite instance. It is not closed.
 *
 * **In pieces** (`pieces`: a count or `'auto'`): the bucket's catalog and listing are copied once
 * into unlogged staging tables cut by a hash of the key, each piece is compared in a transaction
 * of its own (`concurrency` at once, over the pool), and the final transaction moves the rows
 * into the job's reports. The result is the same rows as the single statement. Finished pieces
 * are recorded in the library's progress tables ({@link createProgressTables}), so a call that
 * stops (a timeout, a crash, a lost connection) loses only the pieces in flight, and the next call
 * for the job continues the run. A call after a finished run starts a new one. Readers see the
 * job's earlier reports until the final transaction, then the new ones.
 *
 * @returns the number of rows written to each report.
 * @throws {@link DatabaseError} when a statement fails; {@link TimeoutError} past `deadline`.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { generateReports } from 'orca-reconcile';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const counts = await generateReports(pool, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' });
 * console.log(counts); // { phantoms: 3, orphans: 0, mismatches: 1 }
 * await pool.end();
 * ```
 * @category Reconcile
 */
export async function generateReports(
  database: Database,
  target: ReportTarget,
  options: GenerateReportsOptions = {},
): Promise<ReportCounts> {
  const jobId = validateJobId(target?.jobId);
  const orcaArchiveLocation = validateArchiveLocation(target?.orcaArchiveLocation);
  const schema = schemaOf(options);
  const deadline = deadlineOf(options.deadline);
  const signal = validateSignal(options.signal);
  const pieces = validatePieces(options.pieces);
  const concurrency = validateConcurrency(options.concurrency);
  const onProgress = validateCallback(options.onProgress, 'onProgress');
  const scope = { database, jobId, orcaArchiveLocation, schema, deadline, retry: options.retry, logger: options.logger, signal };
  const single = () =>
    guardedTransaction(database, { ...scope, operation: 'generate reports' }, (tx) => replaceReports(tx, jobId, orcaArchiveLocation, schema));
  if (pieces === undefined) return single();
  return piecedRun(scope, { pieces, concurrency, onProgress }, (tx, _job, runId) => finishRunIn(tx, scope, runId), single);
}
