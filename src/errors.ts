/**
 * Error codes carried by every {@link OrcaReconcileError}. A caller can branch on `error.code`
 * (or on `instanceof`) without parsing messages.
 *
 * @example
 * ```ts
 * import { OrcaReconcileError, type OrcaReconcileErrorCode } from 'orca-reconcile';
 *
 * const retryable: OrcaReconcileErrorCode[] = ['DATABASE', 'TIMEOUT', 'QUEUE'];
 * const worthRetrying = (error: unknown) => error instanceof OrcaReconcileError && retryable.includes(error.code);
 * ```
 * @category Errors
 */
export type OrcaReconcileErrorCode =
  | 'INVALID_INPUT'
  | 'CONFIGURATION'
  | 'JOB_NOT_FOUND'
  | 'LOCATION_MISMATCH'
  | 'INVENTORY_NOT_LOADED'
  | 'STALE_INVENTORY'
  | 'JOB_SUPERSEDED'
  | 'JOB_NOT_SUCCESSFUL'
  | 'NO_PREVIOUS_JOB'
  | 'DIFFERENT_LOCATIONS'
  | 'ABORTED'
  | 'TIMEOUT'
  | 'DATABASE'
  | 'QUEUE'
  | 'RUN_LOST'
  | 'RUN_NOT_READY';

/**
 * Base class of every error this library throws on purpose.
 *
 * @example
 * ```ts
 * import { OrcaReconcileError } from 'orca-reconcile';
 *
 * try {
 *   await handler(event, context);
 * } catch (error) {
 *   if (error instanceof OrcaReconcileError) console.error(error.code, error.message);
 *   throw error;
 * }
 * ```
 * @category Errors
 */
export class OrcaReconcileError extends Error {
  /** Stable, machine-readable kind of failure. */
  readonly code: OrcaReconcileErrorCode;

  constructor(code: OrcaReconcileErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * An argument or event field is missing or has the wrong type or value. Thrown before any
 * database or queue call, so nothing has been written.
 *
 * @example
 * ```ts
 * try {
 *   await task({ jobId: -1, orcaArchiveLocation: 'b', queueUrl: 'q', messageReceiptHandle: 'h' }, deps);
 * } catch (error) {
 *   if (error instanceof InvalidInputError) console.error(`bad ${error.field}`);
 * }
 * ```
 * @category Errors
 */
export class InvalidInputError extends OrcaReconcileError {
  /** Path of the offending field, for example `event.jobId` or `schema`. */
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_INPUT', message, options);
    this.field = field;
  }
}

/**
 * The runtime configuration is incomplete or unusable: a missing environment variable, a
 * database secret without the expected keys, or a pieced run in a schema without the library's
 * progress tables. Never includes secret values in its message.
 *
 * @example
 * ```ts
 * if (error instanceof ConfigurationError) console.error(`set ${error.variable}`);
 * ```
 * @category Errors
 */
export class ConfigurationError extends OrcaReconcileError {
  /** The environment variable, secret key or table that is missing or invalid. */
  readonly variable: string;

  constructor(variable: string, message: string, options?: { cause?: unknown }) {
    super('CONFIGURATION', message, options);
    this.variable = variable;
  }
}

/**
 * No `reconcile_job` row has the given id.
 *
 * @example
 * ```ts
 * if (error instanceof JobNotFoundError) console.error(`job ${error.jobId} does not exist`);
 * ```
 * @category Errors
 */
export class JobNotFoundError extends OrcaReconcileError {
  readonly jobId: number;

  constructor(jobId: number) {
    super('JOB_NOT_FOUND', `reconcile_job ${jobId} does not exist`);
    this.jobId = jobId;
  }
}

/**
 * The job exists but belongs to another archive bucket than the one the message names. Nothing
 * is changed.
 *
 * @example
 * ```ts
 * if (error instanceof LocationMismatchError) console.error(error.jobLocation, error.requestedLocation);
 * ```
 * @category Errors
 */
export class LocationMismatchError extends OrcaReconcileError {
  readonly jobId: number;
  /** The job's `orca_archive_location`. */
  readonly jobLocation: string;
  /** The `orcaArchiveLocation` the caller asked for. */
  readonly requestedLocation: string;

  constructor(jobId: number, jobLocation: string, requestedLocation: string) {
    super(
      'LOCATION_MISMATCH',
      `reconcile_job ${jobId} belongs to archive location "${jobLocation}", not "${requestedLocation}"`,
    );
    this.jobId = jobId;
    this.jobLocation = jobLocation;
    this.requestedLocation = requestedLocation;
  }
}

/**
 * The job is still in `getting S3 list`: its inventory listing is not loaded yet. Nothing is
 * changed; the message can be retried later.
 *
 * @example
 * ```ts
 * if (error instanceof InventoryNotLoadedError) console.error(`job ${error.jobId} is not staged yet`);
 * ```
 * @category Errors
 */
export class InventoryNotLoadedError extends OrcaReconcileError {
  readonly jobId: number;

  constructor(jobId: number) {
    super('INVENTORY_NOT_LOADED', `reconcile_job ${jobId} is still getting its S3 list: the inventory is not loaded yet`);
    this.jobId = jobId;
  }
}

/**
 * The bucket's inventory partition holds another job's listing, so this job can no longer be
 * reconciled: the run is refused. Found before any write, nothing changes; found by the report
 * statement of {@link task} (the job already `generating reports`), the reports roll back and
 * the job is marked `error` with this message.
 *
 * @example
 * ```ts
 * if (error instanceof StaleInventoryError) console.error(`listing now belongs to job ${error.inventoryJobId}`);
 * ```
 * @category Errors
 */
export class StaleInventoryError extends OrcaReconcileError {
  readonly jobId: number;
  /** Job id found on the partition's rows. */
  readonly inventoryJobId: number;
  readonly orcaArchiveLocation: string;

  constructor(jobId: number, inventoryJobId: number, orcaArchiveLocation: string) {
    super(
      'STALE_INVENTORY',
      `the inventory of "${orcaArchiveLocation}" now holds the listing of job ${inventoryJobId}, not of job ${jobId}`,
    );
    this.jobId = jobId;
    this.inventoryJobId = inventoryJobId;
    this.orcaArchiveLocation = orcaArchiveLocation;
  }
}

/**
 * A newer job exists for the same bucket: ORCA's loader has started, or finished, replacing the
 * listing this job was staged with, so comparing now would report against the wrong listing (an
 * empty partition mid-reload makes every catalog file look like a phantom). The run is refused.
 * Found before any write, nothing changes; found at the end of the report transaction of
 * {@link task} (the job already `generating reports`), the reports roll back and the job is
 * marked `error` with this message.
 *
 * @example
 * ```ts
 * if (error instanceof SupersededJobError) console.error(`job ${error.jobId} was replaced by job ${error.newerJobId}`);
 * ```
 * @category Errors
 */
export class SupersededJobError extends OrcaReconcileError {
  readonly jobId: number;
  /** The newest job of the bucket. */
  readonly newerJobId: number;
  readonly orcaArchiveLocation: string;

  constructor(jobId: number, newerJobId: number, orcaArchiveLocation: string) {
    super(
      'JOB_SUPERSEDED',
      `reconcile_job ${jobId} is superseded: job ${newerJobId} is newer for "${orcaArchiveLocation}", so the bucket's listing is being or has been replaced`,
    );
    this.jobId = jobId;
    this.newerJobId = newerJobId;
    this.orcaArchiveLocation = orcaArchiveLocation;
  }
}

/**
 * A pieced run cannot go on: the server restarted since the run began (a crash, a restart or a
 * failover empties its unlogged staging tables), or its staging tables are gone. Nothing of the
 * job's reports changed. {@link generateReports} and {@link task} start a new run by themselves;
 * a Step Functions execution plans the job again.
 *
 * @example
 * ```ts
 * if (error instanceof RunLostError) console.error(`run ${error.runId} of job ${error.jobId} must be planned again`);
 * ```
 * @category Errors
 */
export class RunLostError extends OrcaReconcileError {
  readonly jobId: number;
  readonly runId: number;

  constructor(jobId: number, runId: number, why: string) {
    super('RUN_LOST', `run ${runId} of reconcile_job ${jobId} is lost: ${why}; plan the job again`);
    this.jobId = jobId;
    this.runId = runId;
  }
}

/**
 * A step of a pieced run came too early or too late: a piece before the plan's copies were done,
 * the finish before every piece was, or any step of a run that is finished or was discarded.
 * Nothing was written.
 *
 * @example
 * ```ts
 * if (error instanceof RunNotReadyError) console.error(error.message); // run 7 of reconcile_job 42 has 3 of 12 pieces finished
 * ```
 * @category Errors
 */
export class RunNotReadyError extends OrcaReconcileError {
  readonly jobId: number;
  readonly runId: number;

  constructor(jobId: number, runId: number, why: string) {
    super('RUN_NOT_READY', `run ${runId} of reconcile_job ${jobId} ${why}`);
    this.jobId = jobId;
    this.runId = runId;
  }
}

/**
 * A job whose reports were to be compared has not finished with `success` (5): its reports are
 * missing, partial or stale, so there is nothing sound to compare. Nothing is read.
 *
 * @example
 * ```ts
 * import { JobNotSuccessfulError, compareJobs } from 'orca-reconcile';
 *
 * try {
 *   for await (const change of compareJobs(pool, { jobId: 42 })) console.log(change.kind, change.change, change.keyPath);
 * } catch (error) {
 *   if (error instanceof JobNotSuccessfulError) console.error(`job ${error.jobId} has status ${error.status}`);
 *   else throw error;
 * }
 * ```
 * @category Errors
 */
export class JobNotSuccessfulError extends OrcaReconcileError {
  readonly jobId: number;
  /** The job's `status_id`: 1 to 4, see `OrcaStatus`. */
  readonly status: number;

  constructor(jobId: number, status: number) {
    super('JOB_NOT_SUCCESSFUL', `reconcile_job ${jobId} has status ${status}, not success (5): its reports cannot be compared`);
    this.jobId = jobId;
    this.status = status;
  }
}

/**
 * No earlier job of the same bucket finished with `success`, so a job cannot be compared with its
 * previous run: it is the bucket's first successful one. Nothing is read.
 *
 * @example
 * ```ts
 * import { NoPreviousJobError, summarizeJobChanges } from 'orca-reconcile';
 *
 * const summary = await summarizeJobChanges(pool, { jobId: 42 }).catch((error: unknown) => {
 *   if (error instanceof NoPreviousJobError) return undefined; // the bucket's first run
 *   throw error;
 * });
 * ```
 * @category Errors
 */
export class NoPreviousJobError extends OrcaReconcileError {
  readonly jobId: number;
  /** The job's bucket. */
  readonly orcaArchiveLocation: string;

  constructor(jobId: number, orcaArchiveLocation: string) {
    super(
      'NO_PREVIOUS_JOB',
      `reconcile_job ${jobId} has no previous job with status success (5) for "${orcaArchiveLocation}" to be compared with`,
    );
    this.jobId = jobId;
    this.orcaArchiveLocation = orcaArchiveLocation;
  }
}

/**
 * Two jobs whose reports were to be compared belong to different archive buckets: their reports
 * describe different archives. Nothing is read.
 *
 * @example
 * ```ts
 * import { DifferentLocationsError, summarizeJobChanges } from 'orca-reconcile';
 *
 * try {
 *   await summarizeJobChanges(pool, { jobId: 42, previousJobId: 40 });
 * } catch (error) {
 *   if (error instanceof DifferentLocationsError) console.error(error.orcaArchiveLocation, error.previousOrcaArchiveLocation);
 *   else throw error;
 * }
 * ```
 * @category Errors
 */
export class DifferentLocationsError extends OrcaReconcileError {
  readonly jobId: number;
  /** The bucket of `jobId`. */
  readonly orcaArchiveLocation: string;
  readonly previousJobId: number;
  /** The bucket of `previousJobId`. */
  readonly previousOrcaArchiveLocation: string;

  constructor(jobId: number, orcaArchiveLocation: string, previousJobId: number, previousOrcaArchiveLocation: string) {
    super(
      'DIFFERENT_LOCATIONS',
      `reconcile_job ${jobId} belongs to "${orcaArchiveLocation}" and reconcile_job ${previousJobId} to "${previousOrcaArchiveLocation}": only jobs of one bucket can be compared`,
    );
    this.jobId = jobId;
    this.orcaArchiveLocation = orcaArchiveLocation;
    this.previousJobId = previousJobId;
    this.previousOrcaArchiveLocation = previousOrcaArchiveLocation;
  }
}

/**
 * The caller aborted the work through its `signal`. `name` is `AbortError`, as for `fetch` and
 * Node's own APIs, so code that checks `error.name === 'AbortError'` works unchanged; `cause` is
 * the signal's reason. The statement running on the server was cancelled and the transaction
 * rolled back; {@link task} marks a job it had started `error` with this message.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * setTimeout(() => controller.abort(), 60_000);
 * try {
 *   await generateReports(pool, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' }, { signal: controller.signal });
 * } catch (error) {
 *   if (error instanceof Error && error.name === 'AbortError') console.error('stopped');
 * }
 * ```
 * @category Errors
 */
export class AbortError extends OrcaReconcileError {
  constructor(operation: string, reason: unknown) {
    const why = reason instanceof Error ? reason.message : reason === undefined ? '' : String(reason);
    super('ABORTED', `${operation} was aborted${why ? `: ${why}` : ''}`, { cause: reason });
    this.name = 'AbortError';
  }
}

/**
 * The work could not finish before the deadline (for the Lambda handler: the invocation's
 * remaining time less the safety margin). The job is marked `error` with this message.
 *
 * @example
 * ```ts
 * if (error instanceof TimeoutError) console.error(`gave up after ${error.elapsedMs} ms`);
 * ```
 * @category Errors
 */
export class TimeoutError extends OrcaReconcileError {
  /** Milliseconds from the start of the run to giving up. */
  readonly elapsedMs: number;
  /** Milliseconds the run had, from its start to its deadline. */
  readonly budgetMs: number;

  constructor(operation: string, elapsedMs: number, budgetMs: number, options?: { cause?: unknown }) {
    const seconds = (ms: number) => (ms / 1000).toFixed(1);
    super(
      'TIMEOUT',
      budgetMs > 0
        ? `${operation} timed out after ${seconds(elapsedMs)} s (time budget ${seconds(budgetMs)} s)`
        : `${operation} timed out after ${seconds(elapsedMs)} s: its deadline had passed ${seconds(-budgetMs)} s before it started`,
      options,
    );
    this.elapsedMs = elapsedMs;
    this.budgetMs = budgetMs;
  }
}

/**
 * A database statement failed. `cause` is the driver's error; `sqlState` its SQLSTATE code when
 * the driver reported one.
 *
 * @example
 * ```ts
 * if (error instanceof DatabaseError && error.sqlState === '57014') console.error('statement timed out');
 * ```
 * @category Errors
 */
export class DatabaseError extends OrcaReconcileError {
  /** Which operation failed, for example `generate reports` or `update job status`. */
  readonly operation: string;
  /** Five-character SQLSTATE of the underlying error, when there is one. */
  readonly sqlState: string | undefined;

  constructor(operation: string, cause: unknown) {
    super('DATABASE', `${operation} failed: ${messageOf(cause)}`, { cause });
    this.operation = operation;
    this.sqlState = sqlStateOf(cause);
  }
}

/**
 * Deleting the job's message from SQS failed after all retries.
 *
 * @example
 * ```ts
 * if (error instanceof QueueError) console.error(`could not delete from ${error.queueUrl}`);
 * ```
 * @category Errors
 */
export class QueueError extends OrcaReconcileError {
  readonly queueUrl: string;

  constructor(queueUrl: string, cause: unknown) {
    super('QUEUE', `deleting the message from ${queueUrl} failed: ${messageOf(cause)}`, { cause });
    this.queueUrl = queueUrl;
  }
}

/** The message of anything thrown, never empty. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) {
    if (error.message) return error.message;
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && code ? `${error.name} (${code})` : error.name || 'Error';
  }
  const text = String(error);
  return text === '' ? 'unknown error' : text;
}

/** SQLSTATE of a driver error (pg and PGlite both expose it as `code`). */
export function sqlStateOf(error: unknown): string | undefined {
  if (error instanceof OrcaReconcileError) return undefined;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

const REFUSAL_CODES: ReadonlySet<OrcaReconcileErrorCode> = new Set([
  'INVALID_INPUT',
  'JOB_NOT_FOUND',
  'LOCATION_MISMATCH',
  'INVENTORY_NOT_LOADED',
  'STALE_INVENTORY',
  'JOB_SUPERSEDED',
  'JOB_NOT_SUCCESSFUL',
  'NO_PREVIOUS_JOB',
  'DIFFERENT_LOCATIONS',
]);

/**
 * Whether a failure means the request itself cannot be carried out: bad input, an unknown job, a
 * job of another bucket, a job whose listing is not loaded yet, is no longer in the partition
 * ({@link StaleInventoryError}) or is being replaced by a newer job's
 * ({@link SupersededJobError}); for a comparison of two jobs' reports, a job that is not
 * `success`, no previous successful job, or jobs of two buckets. A run refused before it marked
 * the job `generating reports` changes nothing in the database, and running the same request
 * again will not help.
 *
 * @example
 * ```ts
 * import { isRefusal, task } from 'orca-reconcile';
 *
 * try {
 *   await task(input, dependencies);
 * } catch (error) {
 *   if (isRefusal(error)) console.error('nothing was done:', (error as Error).message);
 *   else throw error;
 * }
 * ```
 * @category Errors
 */
export function isRefusal(error: unknown): error is OrcaReconcileError {
  return error instanceof OrcaReconcileError && REFUSAL_CODES.has(error.code);
}
