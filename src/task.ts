import { DatabaseError, JobNotFoundError, messageOf } from './errors.js';
import { type Database, withTransaction } from './database.js';
import { OrcaStatus, updateJob, writeJobStatus } from './job.js';
import { type SqsSender, removeJobFromQueue } from './queue.js';
import { type ReportCounts, writeReports } from './reports.js';
import { type RetryOptions, isTransientDatabaseError, retryError } from './retry.js';
import { type Logger, silentLogger } from './types.js';
import {
  quoteSchema,
  validateArchiveLocation,
  validateJobId,
  validateQueueUrl,
  validateReceiptHandle,
} from './validation.js';

/** What one reconciliation run works on. */
export interface TaskInput {
  /** Id of the staged `reconcile_job`. */
  jobId: number;
  /** Archive bucket the job's inventory listing belongs to. */
  orcaArchiveLocation: string;
  /** URL of the queue the job message came from. */
  queueUrl: string;
  /** Receipt handle of that message, deleted once the reports are committed. */
  messageReceiptHandle: string;
}

/** What {@link task} works with. The library never closes `database` or `sqs`. */
export interface TaskDependencies {
  /** A `pg` Pool, Client or PoolClient, or a PGlite instance. */
  database: Database;
  /** Deletes the job message; an `SQSClient` fits. */
  sqs: SqsSender;
  logger?: Logger;
  /** PostgreSQL schema of the ORCA tables. Default `orca`. */
  schema?: string;
  /** Backoff of every retried step (database work on transient errors, the SQS delete on any). */
  retry?: Omit<RetryOptions, 'shouldRetry' | 'logger' | 'operation'>;
}

/** Result of a successful run: the job id (the step's output) and the rows written per report. */
export interface TaskOutput extends ReportCounts {
  jobId: number;
}

/**
 * Runs one reconciliation job from start to end:
 *
 * 1. marks the job `generating reports`;
 * 2. writes the phantom, orphan and mismatch reports and marks the job `success`, all in one
 *    transaction (retried on transient database errors);
 * 3. deletes the job's SQS message and resolves to `{ jobId, phantoms, orphans, mismatches }`.
 *
 * If step 1 or 2 fails, the job is marked `error` with the failure's message, the error is
 * re-thrown and the message is left in the queue, so SQS redelivers it (and eventually moves it
 * to the dead-letter queue). If only the delete fails, the reports stay committed and the job
 * stays `success`; a {@link QueueError} is thrown.
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
  const queueUrl = validateQueueUrl(input.queueUrl);
  const messageReceiptHandle = validateReceiptHandle(input.messageReceiptHandle);
  const schemaName = dependencies.schema ?? 'orca';
  const schema = quoteSchema(schemaName);
  const { database, sqs } = dependencies;
  const logger = dependencies.logger ?? silentLogger;
  const fields = { jobId, orcaArchiveLocation };
  const startedAt = Date.now();

  let counts: ReportCounts;
  try {
    await updateJob(
      database,
      { jobId, status: OrcaStatus.GeneratingReports },
      { schema: schemaName, retry: dependencies.retry, logger },
    );
    const generate = retryError({
      ...dependencies.retry,
      shouldRetry: isTransientDatabaseError,
      logger,
      operation: 'generate reports',
    })(() =>
      withTransaction(database, async (tx) => {
        const written = await writeReports(tx, jobId, orcaArchiveLocation, schema);
        // Reports and the success status commit together: no reader sees one without the other.
        await writeJobStatus(tx, schema, { jobId, status: OrcaStatus.Success, errorMessage: null });
        return written;
      }),
    );
    try {
      counts = await generate();
    } catch (error) {
      throw error instanceof JobNotFoundError ? error : new DatabaseError('generate reports', error);
    }
  } catch (error) {
    await recordFailure(database, schemaName, dependencies, logger, jobId, error);
    throw error;
  }

  await removeJobFromQueue(sqs, { queueUrl, receiptHandle: messageReceiptHandle }, { retry: dependencies.retry, logger });
  const output: TaskOutput = { jobId, ...counts };
  logger.info('reconciliation finished', { ...fields, ...counts, durationMs: Date.now() - startedAt });
  return output;
}

/** Marks the job `error`. If even that fails, logs both failures; the caller re-throws the first. */
async function recordFailure(
  database: Database,
  schema: string,
  dependencies: TaskDependencies,
  logger: Logger,
  jobId: number,
  error: unknown,
): Promise<void> {
  const errorMessage = messageOf(error);
  logger.error('reconciliation failed', { jobId, error: errorMessage });
  if (error instanceof JobNotFoundError) return;
  try {
    await updateJob(
      database,
      { jobId, status: OrcaStatus.Error, errorMessage },
      { schema, retry: dependencies.retry, logger },
    );
  } catch (statusError) {
    logger.error('could not mark the job as error', {
      jobId,
      error: errorMessage,
      statusUpdateError: messageOf(statusError),
    });
  }
}
