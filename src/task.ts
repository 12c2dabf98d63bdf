import {
  InvalidInputError,
  InventoryNotLoadedError,
  JobNotFoundError,
  LocationMismatchError,
  messageOf,
} from './errors.js';
import { type Database, withTransaction } from './database.js';
import { guardedTransaction, limitTransaction, lockJob, readReportCounts } from './guard.js';
import { OrcaStatus, writeJobStatus } from './job.js';
import { type SqsSender, removeJobFromQueue } from './queue.js';
import { type ReportCounts, replaceReports } from './reports.js';
import { type RetryOptions, isTransientDatabaseError, retryError } from './retry.js';
import { type Logger, silentLogger } from './types.js';
import {
  quoteSchema,
  validateArchiveLocation,
  validateDeadline,
  validateJobId,
  validateQueueUrl,
  validateReceiptHandle,
} from './validation.js';

/**
 * What one reconciliation run works on.
 *
 * @example
 * ```ts
 * import type { TaskInput } from 'orca-reconcile';
 *
 * // A run started by a job message: the message is deleted once the reports are committed.
 * const fromMessage: TaskInput = { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary', queueUrl, messageReceiptHandle };
 * // A manual re-run: no message to delete.
 * const manual: TaskInput = { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' };
 * ```
 */
export interface TaskInput {
  /** Id of the staged `reconcile_job`. */
  jobId: number;
  /** Archive bucket the job's inventory listing belongs to. */
  orcaArchiveLocation: string;
  /**
   * URL of the queue the job message came from. Give it with `messageReceiptHandle`, or leave
   * both out for a run that no message started (a manual re-run): then nothing is deleted.
   */
  queueUrl?: string;
  /** Receipt handle of that message, deleted once the reports are committed. */
  messageReceiptHandle?: string;
}

/**
 * What {@link task} works with. The library never closes `database` or `sqs`.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { SQSClient } from '@aws-sdk/client-sqs';
 * import type { TaskDependencies } from 'orca-reconcile';
 *
 * const dependencies: TaskDependencies = {
 *   database: new pg.Pool({ connectionString: process.env.DATABASE_URL }),
 *   sqs: new SQSClient({}),
 *   logger: console,
 *   deadline: Date.now() + 5 * 60_000,
 * };
 * ```
 */
export interface TaskDependencies {
  /** A `pg` Pool, Client or PoolClient, or a PGlite instance. */
  database: Database;
  /** Deletes the job message; an `SQSClient` fits. Required when the input names a queue. */
  sqs?: SqsSender;
  logger?: Logger;
  /** PostgreSQL schema of the ORCA tables. Default `orca`. */
  schema?: string;
  /** Backoff of every retried step (database work on transient errors, the SQS delete on any). */
  retry?: Omit<RetryOptions, 'shouldRetry' | 'logger' | 'operation' | 'deadline'>;
  /**
   * Epoch milliseconds by which the database work must end. Statements and lock waits are cut
   * off then, no retry starts after it, and the job is marked `error` with a
   * {@link TimeoutError} message that says how long it ran.
   */
  deadline?: number;
}

/**
 * Result of a successful run: the job id (the step's output) and the rows written per report.
 *
 * @example
 * ```ts
 * import { task } from 'orca-reconcile';
 *
 * const { jobId, phantoms, orphans, mismatches } = await task({ jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' }, { database: pool });
 * console.log(`job ${jobId}: ${phantoms} phantoms, ${orphans} orphans, ${mismatches} mismatches`);
 * ```
 */
export interface TaskOutput extends ReportCounts {
  jobId: number;
}

/**
 * Runs one reconciliation job from start to end:
 *
 * 1. checks the job (it exists, belongs to `orcaArchiveLocation`, has its listing loaded) and
 *    marks it `generating reports`; a job already `success` is not run again;
 * 2. replaces the job's phantom, orphan and mismatch reports and marks the job `success`, all in
 *    one transaction (retried on transient database errors);
 * 3. deletes the job's SQS message (when the input names one) and resolves to
 *    `{ jobId, phantoms, orphans, mismatches }`.
 *
 * Both transactions hold the job's advisory lock, so concurrent runs of one job take turns and
 * the later ones find the job finished. Running a finished job again returns its stored counts
 * and deletes the message.
 *
 * A message that is itself wrong ({@link InvalidInputError}, {@link JobNotFoundError},
 * {@link LocationMismatchError}, {@link InventoryNotLoadedError}) changes nothing. Any other
 * failure marks the job `error` with the failure's message and is re-thrown; the message is left
 * in the queue so SQS redelivers it. If only the delete fails, the reports stay committed and the
 * job `success`; a {@link QueueError} is thrown.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { SQSClient } from '@aws-sdk/client-sqs';
 * import { task } from 'orca-reconcile';
 *
 * const output = await task(
 *   { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary', queueUrl, messageReceiptHandle },
 *   { database: new pg.Pool(), sqs: new SQSClient({}), logger: console },
 * );
 * console.log(output); // { jobId: 42, phantoms: 3, orphans: 0, mismatches: 1 }
 * ```
 */
export async function task(input: TaskInput, dependencies: TaskDependencies): Promise<TaskOutput> {
  const jobId = validateJobId(input?.jobId);
  const orcaArchiveLocation = validateArchiveLocation(input.orcaArchiveLocation);
  const message = validateMessage(input, dependencies);
  const schema = quoteSchema(dependencies.schema ?? 'orca');
  const startedAt = Date.now();
  const deadline =
    dependencies.deadline === undefined ? undefined : { at: validateDeadline(dependencies.deadline), startedAt };
  const { database } = dependencies;
  const logger = dependencies.logger ?? silentLogger;
  const guard = { jobId, orcaArchiveLocation, schema, deadline, retry: dependencies.retry, logger };

  let counts: ReportCounts;
  let regenerated = false;
  try {
    const stored = await guardedTransaction(database, { ...guard, operation: 'start job' }, async (tx, job) => {
      if (job.status === OrcaStatus.Success) return readReportCounts(tx, schema, jobId);
      await writeJobStatus(tx, schema, { jobId, status: OrcaStatus.GeneratingReports, errorMessage: null });
      return undefined;
    });
    counts =
      stored ??
      (await guardedTransaction(database, { ...guard, operation: 'generate reports' }, async (tx, job) => {
        regenerated = false; // this attempt's answer, whatever an earlier attempt set
        // Another run may have finished the job while this one waited for the lock.
        if (job.status === OrcaStatus.Success) return readReportCounts(tx, schema, jobId);
        const written = await replaceReports(tx, jobId, orcaArchiveLocation, schema);
        // Reports and the success status commit together: no reader sees one without the other.
        await writeJobStatus(tx, schema, { jobId, status: OrcaStatus.Success, errorMessage: null });
        regenerated = true;
        return written;
      }));
  } catch (error) {
    if (!isMessageError(error)) await recordFailure(database, schema, dependencies, logger, jobId, error, deadline?.at);
    else logger.error('reconciliation refused', { jobId, orcaArchiveLocation, error: messageOf(error) });
    throw error;
  }

  if (message) {
    await removeJobFromQueue(message.sqs, message, { retry: dependencies.retry, logger });
  }
  logger.info('reconciliation finished', {
    jobId,
    orcaArchiveLocation,
    ...counts,
    regenerated,
    durationMs: Date.now() - startedAt,
  });
  return { jobId, ...counts };
}

/** The message to delete at the end, if the run came from one. */
function validateMessage(
  input: TaskInput,
  dependencies: TaskDependencies,
): { sqs: SqsSender; queueUrl: string; receiptHandle: string } | undefined {
  if (input.queueUrl === undefined && input.messageReceiptHandle === undefined) return undefined;
  const queueUrl = validateQueueUrl(input.queueUrl);
  const receiptHandle = validateReceiptHandle(input.messageReceiptHandle);
  const sqs = dependencies.sqs;
  if (typeof sqs?.send !== 'function') {
    throw new InvalidInputError('sqs', 'sqs must be an SQS client (anything with send(command)) when queueUrl is given');
  }
  return { sqs, queueUrl, receiptHandle };
}

/** Failures that mean the message itself is wrong: the job is not touched. */
function isMessageError(error: unknown): boolean {
  return (
    error instanceof InvalidInputError ||
    error instanceof JobNotFoundError ||
    error instanceof LocationMismatchError ||
    error instanceof InventoryNotLoadedError
  );
}

// Marking the job failed gets this long for its lock wait, its statement and its retries, so a
// run that timed out can still record why before the host stops it. The handler's safety margin
// is larger than this.
const RECORD_FAILURE_TIMEOUT_MS = 5_000;

/**
 * Marks the job `error`, unless it is `success` (another run finished it) or still getting its
 * listing. If even that fails, logs both failures; the caller re-throws the first.
 */
async function recordFailure(
  database: Database,
  schema: string,
  dependencies: TaskDependencies,
  logger: Logger,
  jobId: number,
  error: unknown,
  deadline: number | undefined,
): Promise<void> {
  const errorMessage = messageOf(error);
  logger.error('reconciliation failed', { jobId, error: errorMessage });
  const update = { jobId, status: OrcaStatus.Error, errorMessage } as const;
  const mark = retryError({
    ...dependencies.retry,
    shouldRetry: isTransientDatabaseError,
    logger,
    operation: 'mark job error',
    // Past the run's deadline, only the time reserved for recording the failure is left.
    deadline: deadline === undefined ? undefined : Math.max(deadline, Date.now()) + RECORD_FAILURE_TIMEOUT_MS,
  })(() =>
    withTransaction(database, async (tx) => {
      await limitTransaction(tx, RECORD_FAILURE_TIMEOUT_MS);
      await lockJob(tx, jobId);
      await writeJobStatus(tx, schema, update, [OrcaStatus.Staged, OrcaStatus.GeneratingReports, OrcaStatus.Error]);
    }),
  );
  try {
    await mark();
  } catch (statusError) {
    logger.error('could not mark the job as error', {
      jobId,
      error: errorMessage,
      statusUpdateError: messageOf(statusError),
    });
  }
}
