import { AbortError, InvalidInputError, isRefusal, messageOf } from './errors.js';
import type { Database, Queryable } from './database.js';
import { RECORD_FAILURE_TIMEOUT_MS, deadlineOf, failureDeadline } from './deadline.js';
import { type JobState, type JobTransactionOptions, checkListing, guardedTransaction, jobTransaction } from './guard.js';
import { finishRunIn, validateConcurrency, validatePieces } from './pieces.js';
import { type RunProgress, piecedRun } from './run.js';
import { validateSignal } from './abort.js';
import { writeJobStatus } from './job.js';
import { type MetricsSink, publishRunMetrics } from './metrics.js';
import { type SqsSender, removeJobFromQueue, sqsTarget } from './queue.js';
import { type ReportCounts, readReportCounts, replaceReports } from './reports.js';
import type { Backoff } from './retry.js';
import { schemaOf } from './sql/schema.js';
import { OrcaStatus } from './status.js';
import { type Logger, silentLogger } from './types.js';
import {
  describe,
  readArgument,
  requireObject,
  validateArchiveLocation,
  validateCallback,
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
 * @category Reconcile
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
 * @category Reconcile
 */
export interface TaskDependencies {
  /** A `pg` Pool, Client or PoolClient, or a PGlite instance. */
  database: Database;
  /**
   * Deletes the job message; an `SQSClient` fits. Required when the input names a queue. Its own
   * retries multiply with the library's: build it with `maxAttempts: 1`.
   */
  sqs?: SqsSender;
  /**
   * The SQS endpoint `sqs` sends to when it is not AWS (a local emulator): `queueUrl` may then be
   * on its host. Default: for an `SQSClient`, the `endpoint` it was built with, if any.
   */
  sqsEndpoint?: string;
  logger?: Logger;
  /** PostgreSQL schema of the ORCA tables. Default `orca`. */
  schema?: string;
  /** Backoff of every retried step (database work on transient errors, the SQS delete on any). */
  retry?: Backoff;
  /**
   * Epoch milliseconds by which the database work must end. Statements and lock waits are cut
   * off then, no retry starts after it, and the job is marked `error` with a
   * {@link TimeoutError} message that says how long it ran. The SQS delete must end by then too,
   * or it is aborted with a {@link QueueError}.
   */
  deadline?: number;
  /**
   * Stops the run when aborted: the statement running on the server is cancelled, the
   * transaction rolls back, and the run rejects with {@link AbortError}. A job the run had
   * already marked `generating reports` is marked `error` with a message that says it was
   * aborted. Once the reports are committed the run finishes (the message is still deleted).
   */
  signal?: AbortSignal;
  /**
   * Where the run publishes its report counts, duration or failure, with the bucket as a
   * dimension. A Powertools `Metrics` instance fits as it is. See {@link MetricsSink}.
   */
  metrics?: MetricsSink;
  /**
   * Pieces to divide the comparison into, a count or `'auto'` (see {@link PieceOptions}).
   * Default: none, the single statement. A run that stopped is continued by the next run of the
   * job, without redoing its finished pieces.
   */
  pieces?: number | 'auto';
  /** Pieces compared at once over the pool. Default 1. */
  concurrency?: number;
  /** Hears how far a pieced run has got: once planned, then after every piece. */
  onProgress?: (progress: RunProgress) => void;
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
 * @category Reconcile
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
 * With `pieces`, step 2 runs in pieces (see {@link generateReports}): the pieces first, each in
 * a transaction of its own, then one transaction that moves their rows into the reports and marks
 * the job `success`. A run that stops loses only the pieces in flight; the next run of the job
 * continues.
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
 * @category Reconcile
 */
export async function task(input: TaskInput, dependencies: TaskDependencies): Promise<TaskOutput> {
  const run = await prepareRun(input, dependencies);
  let finished: { counts: ReportCounts; regenerated: boolean };
  let started = false;
  try {
    const stored = await startJob(run);
    started = stored === undefined;
    finished = stored ? { counts: stored, regenerated: false } : await writeReportsAndFinish(run);
  } catch (error) {
    // A refusal before the job was touched leaves it as it was; once it is `generating reports`,
    // every failure is recorded, so that no job is left in that status.
    // An abort before that is the same: nothing of the job changed.
    if (isRefusal(error) && !started) run.logger.error('reconciliation refused', { ...where(run), error: messageOf(error) });
    else if (error instanceof AbortError && !started) run.logger.warn('reconciliation aborted', { ...where(run), error: messageOf(error) });
    else await markFailed(run, error);
    publishFailure(run, error);
    throw error;
  }
  try {
    await deleteMessage(run);
  } catch (error) {
    publishFailure(run, error);
    throw error;
  }
  const durationMs = Date.now() - run.startedAt;
  run.logger.info('reconciliation finished', {
    ...where(run),
    ...finished.counts,
    regenerated: finished.regenerated,
    durationMs,
  });
  publishRunMetrics(run.metrics, run.logger, {
    outcome: 'success',
    orcaArchiveLocation: run.job.orcaArchiveLocation,
    ...finished.counts,
    durationMs,
  });
  return { jobId: run.job.jobId, ...finished.counts };
}

/** One run's validated input and dependencies. */
export interface Run {
  database: Database;
  logger: Logger;
  startedAt: number;
  /** What every transaction of the run is given: the job, schema, deadline, retry and signal. */
  job: Omit<JobTransactionOptions, 'operation'>;
  message: QueueTarget | undefined;
  metrics: MetricsSink | undefined;
  pieces: number | 'auto' | undefined;
  concurrency: number;
  onProgress: ((progress: RunProgress) => void) | undefined;
}

/** The job and its bucket, as every log line of the run names them. */
export const where = (run: Run) => ({ jobId: run.job.jobId, orcaArchiveLocation: run.job.orcaArchiveLocation });

export function publishFailure(run: Run, error: unknown): void {
  publishRunMetrics(run.metrics, run.logger, {
    outcome: 'failure',
    orcaArchiveLocation: run.job.orcaArchiveLocation,
    error,
    durationMs: Date.now() - run.startedAt,
  });
}

/** The message to delete at the end, and the SQS endpoint given for its client. */
interface QueueTarget {
  sqs: SqsSender;
  queueUrl: string;
  receiptHandle: string;
  sqsEndpoint: string | undefined;
}

/** Checks everything the run was given before anything touches the database or the queue. */
export async function prepareRun(input: TaskInput, dependencies: TaskDependencies): Promise<Run> {
  requireObject(input, 'input', 'an object with jobId and orcaArchiveLocation');
  requireObject(dependencies, 'dependencies', 'an object with at least a database');
  const jobId = validateJobId(readArgument(input, 'jobId', 'jobId'));
  const orcaArchiveLocation = validateArchiveLocation(readArgument(input, 'orcaArchiveLocation', 'orcaArchiveLocation'));
  const message = await validateMessage(input, dependencies);
  const database = readArgument(dependencies, 'database', 'database');
  if (typeof (database as { query?: unknown } | undefined)?.query !== 'function') {
    throw new InvalidInputError('database', `database must be a pg Pool, Client or PoolClient, or a PGlite instance, got ${describe(database)}`);
  }
  const schema = schemaOf({ schema: readArgument(dependencies, 'schema', 'schema') });
  const startedAt = Date.now();
  const deadline = deadlineOf(readArgument(dependencies, 'deadline', 'deadline'), startedAt);
  const logger = (readArgument(dependencies, 'logger', 'logger') as Logger | undefined) ?? silentLogger;
  const retry = readArgument(dependencies, 'retry', 'retry') as Backoff | undefined;
  const metrics = readArgument(dependencies, 'metrics', 'metrics') as MetricsSink | undefined;
  const signal = validateSignal(readArgument(dependencies, 'signal', 'signal'));
  const pieces = validatePieces(readArgument(dependencies, 'pieces', 'pieces'));
  const concurrency = validateConcurrency(readArgument(dependencies, 'concurrency', 'concurrency'));
  const onProgress = validateCallback(readArgument(dependencies, 'onProgress', 'onProgress') as ((progress: RunProgress) => void) | undefined, 'onProgress');
  if (metrics !== undefined && !['addDimension', 'addMetric', 'publishStoredMetrics'].every((method) => typeof (metrics as unknown as Record<string, unknown>)[method] === 'function')) {
    throw new InvalidInputError('metrics', 'metrics must have addDimension, addMetric and publishStoredMetrics (a Powertools Metrics instance fits)');
  }
  return {
    database: database as Database,
    logger,
    startedAt,
    job: { jobId, orcaArchiveLocation, schema, deadline, retry, logger, signal },
    message,
    metrics,
    pieces,
    concurrency,
    onProgress,
  };
}

/**
 * Step 1: checks the job and its listing and marks it `generating reports`. Resolves to the
 * stored counts when the job is already `success`, so that it is not run again.
 */
export function startJob(run: Run): Promise<ReportCounts | undefined> {
  const { schema, jobId, orcaArchiveLocation } = run.job;
  return guardedTransaction(run.database, { ...run.job, operation: 'start job' }, async (tx, job) => {
    if (job.status === OrcaStatus.Success) return readReportCounts(tx, schema, jobId);
    await checkListing(tx, schema, jobId, orcaArchiveLocation);
    await writeJobStatus(tx, schema, { jobId, status: OrcaStatus.GeneratingReports, errorMessage: null });
    return undefined;
  });
}

/**
 * Step 2: replaces the reports and marks the job `success` in one transaction, so no reader sees
 * one without the other. `regenerated` is false when another run finished the job meanwhile. In
 * pieces, the pieces run first and this transaction moves their rows.
 */
function writeReportsAndFinish(run: Run): Promise<{ counts: ReportCounts; regenerated: boolean }> {
  const single = () => finishJob(run, null);
  if (run.pieces === undefined) return single();
  return piecedRun(
    { ...run.job, database: run.database, logger: run.logger },
    { pieces: run.pieces, concurrency: run.concurrency, onProgress: run.onProgress },
    (tx, job, runId) => finishJobIn(run, tx, job, runId),
    single,
  );
}

/** Step 2's transaction: the single statement (`runId` null) or the finish of a pieced run. */
export function finishJob(run: Run, runId: number | null): Promise<{ counts: ReportCounts; regenerated: boolean }> {
  return guardedTransaction(run.database, { ...run.job, operation: 'generate reports' }, (tx, job) => finishJobIn(run, tx, job, runId));
}

async function finishJobIn(run: Run, tx: Queryable, job: JobState, runId: number | null) {
  const { schema, jobId, orcaArchiveLocation } = run.job;
  // Another run may have finished the job while this one waited for the lock.
  if (job.status === OrcaStatus.Success) return { counts: await readReportCounts(tx, schema, jobId), regenerated: false };
  const counts = runId === null
    ? await replaceReports(tx, jobId, orcaArchiveLocation, schema)
    : await finishRunIn(tx, { ...run.job, database: run.database }, runId);
  await writeJobStatus(tx, schema, { jobId, status: OrcaStatus.Success, errorMessage: null });
  return { counts, regenerated: true };
}

/**
 * Step 3: deletes the job message, when the run came from one, by the run's deadline. The
 * reports are committed by now: a failure here leaves the job `success` and throws
 * {@link QueueError}.
 */
export async function deleteMessage(run: Run): Promise<void> {
  if (!run.message) return;
  const { sqs, sqsEndpoint } = run.message;
  await removeJobFromQueue(sqs, run.message, { retry: run.job.retry, logger: run.logger, deadline: run.job.deadline?.at, sqsEndpoint });
}

/**
 * On failure: marks the job `error` with the failure's message, unless it is `success` (another
 * run finished it) or still getting its listing. It takes no advisory lock and gets its own short
 * deadline, so that a run that timed out, or could not get the job's lock, still records why; only
 * a database that cannot be reached at all leaves the job as it was. If even that fails, both
 * failures are logged; the caller re-throws the first.
 */
export async function markFailed(run: Run, error: unknown): Promise<void> {
  const errorMessage = messageOf(error);
  run.logger.error('reconciliation failed', { jobId: run.job.jobId, error: errorMessage });
  const { schema, jobId } = run.job;
  const failed = { jobId, status: OrcaStatus.Error, errorMessage } as const;
  try {
    await jobTransaction(
      run.database,
      {
        ...run.job,
        // Recording why the run stopped must not stop with it.
        signal: undefined,
        operation: 'mark job error',
        deadline: failureDeadline(run.job.deadline),
        limitMs: RECORD_FAILURE_TIMEOUT_MS,
        // Logged beside the run's own failure: the driver's words say most.
        rawErrors: true,
        // Another session may hold the job's lock past every deadline (a concurrent run of the
        // same job, or anything stuck): the status update must not wait for it. Its guard on the
        // current status keeps a `success` another run committed.
        lock: false,
      },
      (tx) => writeJobStatus(tx, schema, failed, [OrcaStatus.Staged, OrcaStatus.GeneratingReports, OrcaStatus.Error]),
    );
  } catch (statusError) {
    run.logger.error('could not mark the job as error', {
      jobId: run.job.jobId,
      error: errorMessage,
      statusUpdateError: messageOf(statusError),
    });
  }
}

/** The message to delete at the end, if the run came from one. */
async function validateMessage(
  input: TaskInput,
  dependencies: TaskDependencies,
): Promise<QueueTarget | undefined> {
  const queueUrlValue = readArgument(input, 'queueUrl', 'queueUrl');
  const handleValue = readArgument(input, 'messageReceiptHandle', 'messageReceiptHandle');
  if (queueUrlValue === undefined && handleValue === undefined) return undefined;
  const sqs = readArgument(dependencies, 'sqs', 'sqs') as SqsSender | undefined;
  const sqsEndpoint = readArgument(dependencies, 'sqsEndpoint', 'sqsEndpoint') as string | undefined;
  const queueUrl = validateQueueUrl(queueUrlValue, 'queueUrl', await sqsTarget(sqs, sqsEndpoint));
  const receiptHandle = validateReceiptHandle(handleValue);
  if (typeof sqs?.send !== 'function') {
    throw new InvalidInputError('sqs', 'sqs must be an SQS client (anything with send(command)) when queueUrl is given');
  }
  return { sqs, queueUrl, receiptHandle, sqsEndpoint };
}
