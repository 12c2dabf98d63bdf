import {
  DatabaseError,
  InventoryNotLoadedError,
  JobNotFoundError,
  LocationMismatchError,
  OrcaReconcileError,
  StaleInventoryError,
  SupersededJobError,
} from './errors.js';
import { throwIfAborted, withAbort } from './abort.js';
import { type Database, type Queryable, withTransaction } from './database.js';
import { type Deadline, applyDeadline, isTimeout, limitTransaction, timeoutError } from './deadline.js';
import { type Backoff, isTransientDatabaseError, retryError } from './retry.js';
import { OrcaStatus } from './status.js';
import { LOCK_JOB_SHARED_SQL, LOCK_JOB_SQL, jobLockKeys, newerJobSql, selectJobSql } from './sql/jobs.js';
import { inventorySampleSql } from './sql/reports.js';
import type { QuotedSchema } from './sql/schema.js';
import type { Logger } from './types.js';

/**
 * Serialises every worker of one job until the end of the current transaction; in shared mode
 * (the pieces of a run) only against the exclusive holders.
 */
export async function lockJob(tx: Queryable, schema: QuotedSchema, jobId: number, shared = false): Promise<void> {
  await tx.query(shared ? LOCK_JOB_SHARED_SQL : LOCK_JOB_SQL, jobLockKeys(schema, jobId));
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
  schema: QuotedSchema,
  jobId: number,
  orcaArchiveLocation: string,
): Promise<JobState> {
  const { rows } = await tx.query(selectJobSql(schema), [jobId]);
  const row = rows[0] as { status_id: number; orca_archive_location: string } | undefined;
  if (!row) throw new JobNotFoundError(jobId);
  if (row.orca_archive_location !== orcaArchiveLocation) {
    throw new LocationMismatchError(jobId, row.orca_archive_location, orcaArchiveLocation);
  }
  const status = Number(row.status_id) as OrcaStatus;
  if (status === OrcaStatus.GettingS3List) throw new InventoryNotLoadedError(jobId);
  return { status, orcaArchiveLocation: row.orca_archive_location };
}

/**
 * Refuses a job that is no longer the bucket's newest ({@link SupersededJobError}): ORCA's loader
 * makes the new job before it truncates and reloads the partition, so a newer job means the
 * listing is being, or has been, replaced, even while the partition is empty.
 */
export async function checkNewest(tx: Queryable, schema: QuotedSchema, jobId: number, orcaArchiveLocation: string): Promise<void> {
  const { rows } = await tx.query(newerJobSql(schema), [jobId, orcaArchiveLocation]);
  const newer = rows[0] as { newer_job_id: number | string | bigint } | undefined;
  if (newer) throw new SupersededJobError(jobId, Number(newer.newer_job_id), orcaArchiveLocation);
}

/**
 * Checks, before any write, that the bucket's partition holds this job's listing: the job is the
 * bucket's newest ({@link checkNewest}) and any one inventory row is this job's (the loader
 * truncates before loading, so one row tells whose listing the partition holds). Rows of
 * another job mixed in are found by the report statement itself.
 */
export async function checkListing(tx: Queryable, schema: QuotedSchema, jobId: number, orcaArchiveLocation: string): Promise<void> {
  await checkNewest(tx, schema, jobId, orcaArchiveLocation);
  const { rows } = await tx.query(inventorySampleSql(schema), [orcaArchiveLocation]);
  const sample = rows[0] as { job_id: number | string | bigint } | undefined;
  if (sample && Number(sample.job_id) !== jobId) {
    throw new StaleInventoryError(jobId, Number(sample.job_id), orcaArchiveLocation);
  }
}

/** How a job transaction runs. */
export interface JobTransactionOptions {
  jobId: number;
  orcaArchiveLocation: string;
  schema: QuotedSchema;
  /** Names the work in errors and logs, for example `generate reports`. */
  operation: string;
  deadline?: Deadline;
  /** A cap on each statement and lock wait, whatever the deadline leaves. */
  limitMs?: number;
  /** Throw the last failure as it is, not as {@link TimeoutError} or {@link DatabaseError}. */
  rawErrors?: boolean;
  /** Stops the work: the running statement is cancelled and {@link AbortError} thrown. */
  signal?: AbortSignal;
  /**
   * Whether to take the job's advisory lock (default true), or to take it in shared mode (the
   * pieces of one run). Without it the work relies on the job row's own lock, which is held only
   * for an instant by every other writer.
   */
  lock?: boolean | 'shared';
  retry?: Backoff;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * Runs `work` in one transaction bounded by the deadline and holding the job's lock. Transient
 * database errors retry the whole transaction, never past the deadline. Errors of this library
 * pass through as they are; a timeout becomes a {@link TimeoutError} and any other failure a
 * {@link DatabaseError}.
 */
export async function jobTransaction<T>(
  database: Database,
  options: JobTransactionOptions,
  work: (tx: Queryable) => Promise<T>,
): Promise<T> {
  const { jobId, operation, deadline, signal } = options;
  const attempt = retryError({
    ...options.retry,
    shouldRetry: (error) => !signal?.aborted && isTransientDatabaseError(error),
    logger: options.logger,
    operation,
    deadline: deadline?.at,
  })(() => {
    throwIfAborted(signal, operation);
    return withTransaction(database, (client) =>
      withAbort(client, signal, operation, async (tx) => {
        if (options.limitMs !== undefined) await limitTransaction(tx, options.limitMs);
        await applyDeadline(tx, deadline, operation);
        if (options.lock !== false) await lockJob(tx, options.schema, jobId, options.lock === 'shared');
        // Timeouts count per statement: shrink them to what is left after the lock wait.
        await applyDeadline(tx, deadline, operation);
        return work(tx);
      }),
    );
  });
  try {
    return await attempt();
  } catch (error) {
    if (options.rawErrors) throw error;
    throw operationError(error, deadline, operation);
  }
}

/**
 * What a failed operation throws: a {@link TimeoutError} past the deadline, an error of this
 * library as it is, any other failure as a {@link DatabaseError}.
 */
export function operationError(error: unknown, deadline: Deadline | undefined, operation: string): Error {
  if (deadline && isTimeout(error)) return timeoutError(deadline, operation, error);
  if (error instanceof OrcaReconcileError) return error;
  return new DatabaseError(operation, error);
}

/**
 * A {@link jobTransaction} that first checks the job (see {@link loadJob}) and hands its state to
 * `work`.
 */
export function guardedTransaction<T>(
  database: Database,
  options: JobTransactionOptions,
  work: (tx: Queryable, job: JobState) => Promise<T>,
): Promise<T> {
  return jobTransaction(database, options, async (tx) =>
    work(tx, await loadJob(tx, options.schema, options.jobId, options.orcaArchiveLocation)),
  );
}
