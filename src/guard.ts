import {
  DatabaseError,
  InventoryNotLoadedError,
  JobNotFoundError,
  LocationMismatchError,
  OrcaReconcileError,
  TimeoutError,
} from './errors.js';
import { type Database, type Queryable, withTransaction } from './database.js';
import { OrcaStatus } from './job.js';
import type { ReportCounts } from './reports.js';
import { type RetryOptions, isTransientDatabaseError, retryError } from './retry.js';
import type { Logger } from './types.js';

// First key of the two-key advisory lock: "ORCA" in ASCII, so that the lock space of this library
// stays apart from single-key locks other code may take on small integers.
const LOCK_NAMESPACE = 0x4f524341;

/**
 * Serialises every worker of one job until the end of the current transaction. Job ids map onto
 * the lock's 31-bit second key; two jobs that collide only wait for each other, never share work.
 */
export async function lockJob(tx: Queryable, jobId: number): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1::int4, ($2::int8 % 2147483648)::int4)', [LOCK_NAMESPACE, jobId]);
}

export interface JobState {
  status: OrcaStatus;
  orcaArchiveLocation: string;
}

/**
 * Reads the job and checks that this message may work on it: the job exists, belongs to the
 * requested bucket and has its listing loaded. These checks come before any write, so a wrong
 * message changes nothing.
 */
export async function loadJob(
  tx: Queryable,
  schema: string,
  jobId: number,
  orcaArchiveLocation: string,
): Promise<JobState> {
  const { rows } = await tx.query(
    `SELECT status_id, orca_archive_location FROM ${schema}.reconcile_job WHERE id = $1::int8`,
    [jobId],
  );
  const row = rows[0] as { status_id: number; orca_archive_location: string } | undefined;
  if (!row) throw new JobNotFoundError(jobId);
  if (row.orca_archive_location !== orcaArchiveLocation) {
    throw new LocationMismatchError(jobId, row.orca_archive_location, orcaArchiveLocation);
  }
  const status = Number(row.status_id) as OrcaStatus;
  if (status === OrcaStatus.GettingS3List) throw new InventoryNotLoadedError(jobId);
  return { status, orcaArchiveLocation: row.orca_archive_location };
}

/** Row counts of the reports already stored for a job (primary keys lead with job_id). */
export async function readReportCounts(tx: Queryable, schema: string, jobId: number): Promise<ReportCounts> {
  const { rows } = await tx.query(
    `SELECT (SELECT count(*) FROM ${schema}.reconcile_phantom_report WHERE job_id = $1::int8) AS phantoms,
            (SELECT count(*) FROM ${schema}.reconcile_orphan_report WHERE job_id = $1::int8) AS orphans,
            (SELECT count(*) FROM ${schema}.reconcile_catalog_mismatch_report WHERE job_id = $1::int8) AS mismatches`,
    [jobId],
  );
  const row = rows[0] as Record<keyof ReportCounts, unknown>;
  return { phantoms: Number(row.phantoms), orphans: Number(row.orphans), mismatches: Number(row.mismatches) };
}

/** When a run must give up: epoch milliseconds, and when the run started (for messages). */
export interface Deadline {
  at: number;
  startedAt: number;
}

/**
 * Bounds every statement and lock wait of the current transaction by the time left before the
 * deadline, so PostgreSQL cancels the work instead of the host killing the process.
 */
export async function applyDeadline(tx: Queryable, deadline: Deadline | undefined, operation: string): Promise<void> {
  if (!deadline) return;
  const left = Math.floor(deadline.at - Date.now());
  if (left <= 0) throw timeoutError(deadline, operation);
  await limitTransaction(tx, left);
}

/** Sets `statement_timeout` and `lock_timeout` for the rest of the current transaction. */
export async function limitTransaction(tx: Queryable, milliseconds: number): Promise<void> {
  await tx.query("SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true)", [
    String(milliseconds),
  ]);
}

// statement_timeout cancels with query_canceled, lock_timeout with lock_not_available.
const TIMEOUT_SQLSTATES = new Set(['57014', '55P03']);

export function isTimeout(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth += 1) {
    if (current instanceof TimeoutError) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && TIMEOUT_SQLSTATES.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

export function timeoutError(deadline: Deadline, operation: string, cause?: unknown): TimeoutError {
  return new TimeoutError(operation, Date.now() - deadline.startedAt, deadline.at - deadline.startedAt, { cause });
}

/** How {@link guardedTransaction} runs. */
export interface GuardOptions {
  jobId: number;
  orcaArchiveLocation: string;
  /** Quoted schema name. */
  schema: string;
  /** Names the work in errors and logs, for example `generate reports`. */
  operation: string;
  deadline?: Deadline;
  retry?: Omit<RetryOptions, 'shouldRetry' | 'logger' | 'operation' | 'deadline'>;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * Runs `work` in one transaction that first bounds itself by the deadline, takes the job's lock
 * and checks the job (see {@link loadJob}). Transient database errors retry the whole
 * transaction. Errors of this library pass through as they are; a timeout becomes a
 * {@link TimeoutError} and any other failure a {@link DatabaseError}.
 */
export async function guardedTransaction<T>(
  database: Database,
  options: GuardOptions,
  work: (tx: Queryable, job: JobState) => Promise<T>,
): Promise<T> {
  const { jobId, orcaArchiveLocation, schema, operation, deadline } = options;
  const attempt = retryError({
    ...options.retry,
    shouldRetry: isTransientDatabaseError,
    logger: options.logger,
    operation,
    deadline: deadline?.at,
  })(() =>
    withTransaction(database, async (tx) => {
      await applyDeadline(tx, deadline, operation);
      await lockJob(tx, jobId);
      const job = await loadJob(tx, schema, jobId, orcaArchiveLocation);
      // Timeouts count per statement: shrink them to what is left after the lock wait.
      await applyDeadline(tx, deadline, operation);
      return work(tx, job);
    }),
  );
  try {
    return await attempt();
  } catch (error) {
    if (deadline && isTimeout(error)) throw timeoutError(deadline, operation, error);
    if (error instanceof OrcaReconcileError) throw error;
    throw new DatabaseError(operation, error);
  }
}
