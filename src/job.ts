import { DatabaseError, InvalidInputError, JobNotFoundError } from './errors.js';
import { type Database, type Queryable } from './database.js';
import { type Backoff, isTransientDatabaseError, retryError } from './retry.js';
import { jobExistsSql, updateJobSql } from './sql/jobs.js';
import { type QuotedSchema, schemaOf } from './sql/schema.js';
import { OrcaStatus } from './status.js';
import type { Logger, SchemaOptions } from './types.js';
import { validateJobId } from './validation.js';

const STATUS_VALUES = new Set<number>(Object.values(OrcaStatus));

/**
 * The status change {@link updateJob} makes.
 *
 * @example
 * ```ts
 * import { OrcaStatus, type JobUpdate } from 'orca-reconcile';
 *
 * const failed: JobUpdate = { jobId: 42, status: OrcaStatus.Error, errorMessage: 'inventory manifest unreadable' };
 * const staged: JobUpdate = { jobId: 43, status: OrcaStatus.Staged };
 * ```
 * @category Jobs
 */
export interface JobUpdate {
  jobId: number;
  status: OrcaStatus;
  /** Required, and non-empty, for {@link OrcaStatus.Error}; forbidden for every other status. */
  errorMessage?: string | null;
}

/**
 * Options of {@link updateJob}.
 *
 * @example
 * ```ts
 * import { OrcaStatus, updateJob } from 'orca-reconcile';
 *
 * await updateJob(pool, { jobId: 42, status: OrcaStatus.Staged }, { schema: 'orca', retry: { maxRetries: 5 }, logger: console });
 * ```
 * @category Jobs
 */
export interface UpdateJobOptions extends SchemaOptions {
  /** Backoff for transient database errors. Only transient errors are ever retried. */
  retry?: Backoff;
  logger?: Pick<Logger, 'warn'>;
}

/** Checks a status change against the spec's rules and returns the message to store. */
export function validateJobUpdate(update: JobUpdate): { jobId: number; status: OrcaStatus; errorMessage: string | null } {
  const jobId = validateJobId(update?.jobId);
  const status = update.status;
  if (typeof status !== 'number' || !STATUS_VALUES.has(status)) {
    throw new InvalidInputError('status', `status must be one of ${[...STATUS_VALUES].join(', ')}, got ${String(status)}`);
  }
  const errorMessage = update.errorMessage ?? null;
  if (status === OrcaStatus.Error) {
    if (typeof errorMessage !== 'string' || errorMessage.trim() === '') {
      throw new InvalidInputError('errorMessage', 'errorMessage must be a non-empty string when status is Error (4)');
    }
  } else if (errorMessage !== null) {
    throw new InvalidInputError('errorMessage', `errorMessage must be absent unless status is Error (4), got status ${status}`);
  }
  return { jobId, status, errorMessage };
}

/**
 * Applies a validated status change with `client`. With `onlyFrom`, only a job currently in one
 * of those statuses changes, and a job in another status is left alone without error. Throws
 * {@link JobNotFoundError} when no job has the id.
 */
export async function writeJobStatus(
  client: Queryable,
  schema: QuotedSchema,
  update: { jobId: number; status: OrcaStatus; errorMessage: string | null },
  onlyFrom?: readonly OrcaStatus[],
): Promise<void> {
  const values = [update.jobId, update.status, update.errorMessage, onlyFrom ?? null];
  const result = (await client.query(updateJobSql(schema), values)) as {
    rowCount?: number | null;
    affectedRows?: number;
  };
  const changed = result.rowCount ?? result.affectedRows ?? 0;
  if (changed > 0) return;
  if (!onlyFrom) throw new JobNotFoundError(update.jobId);
  const { rows } = await client.query(jobExistsSql(schema), [update.jobId]);
  if (rows.length === 0) throw new JobNotFoundError(update.jobId);
}

/**
 * Moves a reconcile job to a new status, stamping `last_update` (and `end_time` for
 * {@link OrcaStatus.Error} and {@link OrcaStatus.Success}). Error requires a non-empty
 * `errorMessage`; every other status forbids one. Transient database errors are retried.
 *
 * @throws {@link InvalidInputError} for a bad id, status or message, before any query.
 * @throws {@link JobNotFoundError} when no job has the id.
 * @throws {@link DatabaseError} when the update fails.
 *
 * @example
 * ```ts
 * import { OrcaStatus, updateJob } from 'orca-reconcile';
 *
 * await updateJob(pool, { jobId: 42, status: OrcaStatus.Error, errorMessage: 'inventory manifest unreadable' });
 * ```
 * @category Jobs
 */
export async function updateJob(database: Database, update: JobUpdate, options: UpdateJobOptions = {}): Promise<void> {
  const checked = validateJobUpdate(update);
  const schema = schemaOf(options);
  const attempt = retryError({
    ...options.retry,
    shouldRetry: isTransientDatabaseError,
    logger: options.logger,
    operation: 'update job status',
  })(() => writeJobStatus(database, schema, checked));
  try {
    await attempt();
  } catch (error) {
    if (error instanceof JobNotFoundError) throw error;
    throw new DatabaseError('update job status', error);
  }
}
