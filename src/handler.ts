import type { SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import { ConfigurationError, InvalidInputError, messageOf } from './errors.js';
import type { Database } from './database.js';
import { type SqsSender, sqsTarget } from './queue.js';
import { invocationDeadline } from './deadline.js';
import type { MetricsSink } from './metrics.js';
import type { Backoff } from './retry.js';
import { validateConcurrency, validatePieces } from './pieces.js';
import type { ReconcileEvent, ReconcileOutput } from './schemas.js';
import { type TaskStep, type TaskStepOutput, parseStep, taskStep } from './steps.js';
import { task } from './task.js';
import { type Logger, silentLogger } from './types.js';
import { type SqsTarget, describe, isPlainObject, parseReconcileEvent, validateQueueUrl } from './validation.js';

/**
 * Connection details of the ORCA database user, as ORCA stores them in its Secrets Manager
 * secret (the `admin_*` keys of that secret are not used).
 *
 * @example
 * ```ts
 * import { createHandler, type DbConnectInfo } from 'orca-reconcile';
 *
 * // Connection details from somewhere other than Secrets Manager:
 * export const handler = createHandler({
 *   getDbConnectInfo: async (): Promise<DbConnectInfo> => ({
 *     host: 'orca-db.example.internal',
 *     port: 5432,
 *     user_database: 'orca',
 *     user_username: 'orca_user',
 *     user_password: process.env.ORCA_DB_PASSWORD ?? '',
 *   }),
 * });
 * ```
 * @category Reconcile
 */
export interface DbConnectInfo {
  host: string;
  port: number | string;
  user_database: string;
  user_username: string;
  user_password: string;
}

/**
 * The part of a Lambda context the handler uses: the remaining time sets the run's deadline,
 * the request id goes into a debug log line. A Lambda `Context` fits as it is. Without
 * `getRemainingTimeInMillis` the run has no deadline; one that is not a function, throws, or
 * does not return a finite number is an `InvalidInputError` naming
 * `context.getRemainingTimeInMillis`.
 *
 * @example
 * ```ts
 * import { createHandler, type LambdaContextLike } from 'orca-reconcile';
 *
 * const handler = createHandler();
 * // Outside Lambda: give the run five minutes.
 * const startedAt = Date.now();
 * const context: LambdaContextLike = { getRemainingTimeInMillis: () => 300_000 - (Date.now() - startedAt) };
 * await handler(event, context);
 * ```
 * @category Reconcile
 */
export interface LambdaContextLike {
  getRemainingTimeInMillis?: () => number;
  awsRequestId?: string;
}

/**
 * Options of {@link createHandler}. Everything has a default read from the environment.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createHandler } from 'orca-reconcile';
 *
 * export const handler = createHandler({
 *   database: new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 }),
 *   queueUrl: process.env.JOB_QUEUE_URL,
 *   schema: 'orca',
 *   retry: { maxRetries: 3, backoffInSeconds: 1, backoffFactor: 2 },
 *   timeoutMarginMs: 15_000,
 *   logger: console,
 * });
 * ```
 * @category Reconcile
 */
export interface HandlerOptions {
  /**
   * The database, or a function that returns it (called once, on first use, and cached). The
   * handler does not close a database it did not build. Default: a small `pg` pool built from
   * {@link HandlerOptions.getDbConnectInfo}.
   */
  database?: Database | (() => Database | Promise<Database>);
  /**
   * Reads the connection details: once per container, and once more when the database refuses
   * the password (SQLSTATE 28P01, as after a rotation of the secret). Default: the Secrets
   * Manager secret named by `DB_CONNECT_INFO_SECRET_ARN`.
   */
  getDbConnectInfo?: () => Promise<DbConnectInfo>;
  /** Extra settings for the pool the handler builds (ssl, timeouts, ...). */
  poolConfig?: Omit<pg.PoolConfig, 'host' | 'port' | 'database' | 'user' | 'password' | 'connectionString'>;
  /**
   * SQS client used to delete the job message. Default: an `SQSClient` for `AWS_REGION` with one
   * HTTP attempt per send (the handler does the retrying), a 2 s connection timeout and a 5 s
   * request timeout. An injected `SQSClient`'s own retries multiply with the handler's: build it
   * with `maxAttempts: 1`.
   */
  sqs?: SqsSender;
  /**
   * The SQS endpoint to send to instead of AWS, such as a local emulator: the client the handler
   * builds uses it, and the queue URL may be on its host. Default: `AWS_ENDPOINT_URL_SQS`, then
   * `AWS_ENDPOINT_URL`; with an injected `SQSClient`, the endpoint it was built with.
   */
  sqsEndpoint?: string;
  /**
   * URL of the job queue. Default: `INTERNAL_REPORT_QUEUE_URL`. Checked on each invocation
   * before any database call: `https://` on an SQS host, or on the host of the SQS endpoint, with
   * the path `/<12-digit account id>/<queue name>`.
   */
  queueUrl?: string;
  logger?: Logger;
  /** PostgreSQL schema of the ORCA tables. Default `orca`. */
  schema?: string;
  /** Backoff of the retried steps. */
  retry?: Backoff;
  /** Where each run publishes its numbers; a Powertools `Metrics` fits. See {@link MetricsSink}. */
  metrics?: MetricsSink;
  /** Where configuration variables are read. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /**
   * Milliseconds kept back from the invocation's remaining time (`context.getRemainingTimeInMillis()`):
   * the database work is cut off that long before Lambda would stop the process, leaving time to
   * mark the job `error` with a timeout message. Default 10000. Must exceed the 5 s the failure
   * record itself may take.
   */
  timeoutMarginMs?: number;
  /**
   * Pieces to divide each job's comparison into, a count or `'auto'` (see {@link PieceOptions}).
   * Default: none for a whole run (the single statement), `'auto'` for a `plan` step.
   */
  pieces?: number | 'auto';
  /** Pieces compared at once within one invocation, over the handler's pool. Default 1. */
  concurrency?: number;
}

/**
 * An event for one step of a job reconciled in pieces: the job's event, and the step
 * ({@link TaskStep}) beside it, as the Step Functions state machine in `examples/step-functions`
 * passes it.
 *
 * @example
 * ```ts
 * import type { ReconcileStepEvent } from 'orca-reconcile';
 *
 * const event: ReconcileStepEvent = {
 *   event: { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary', messageReceiptHandle: 'AQEB...' },
 *   step: 'piece',
 *   runId: 7,
 *   piece: 3,
 * };
 * ```
 * @category Reconcile
 */
export type ReconcileStepEvent = ReconcileEvent & TaskStep;

/**
 * A Lambda handler that also releases, on `close()`, the clients it built itself.
 *
 * @example
 * ```ts
 * import { createHandler, type ReconcileHandler } from 'orca-reconcile';
 *
 * const handler: ReconcileHandler = createHandler({ logger: console });
 * try {
 *   console.log(await handler({ event: { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary', messageReceiptHandle } }));
 * } finally {
 *   await handler.close(); // ends the pool and the SQS client it built
 * }
 * ```
 * @category Reconcile
 */
export interface ReconcileHandler {
  /** One step of a job reconciled in pieces (an event with `step`): see {@link taskStep}. */
  (event: ReconcileStepEvent, context?: LambdaContextLike): Promise<TaskStepOutput>;
  /** A whole run of the job: see {@link task}. */
  (event: unknown, context?: LambdaContextLike): Promise<ReconcileOutput>;
  /** Ends the pool and destroys the SQS client the handler built; injected ones are left alone. */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MARGIN_MS = 10_000;

// The client the handler builds: one HTTP attempt per send, since removeJobFromQueue does the
// retrying, and no request left waiting on an endpoint that never answers.
const SQS_CONNECTION_TIMEOUT_MS = 2_000;
const SQS_REQUEST_TIMEOUT_MS = 5_000;

// invalid_password: the password of the connection details is no longer the role's.
const INVALID_PASSWORD = '28P01';

function requireVariable(env: Record<string, string | undefined>, name: string): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') {
    throw new ConfigurationError(name, `environment variable ${name} must be set`);
  }
  return value;
}

/** Reads ORCA's database secret. Its values never appear in errors or logs. */
async function readSecret(secretArn: string, region: string): Promise<DbConnectInfo> {
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = new SecretsManagerClient({ region });
  try {
    const response = await client.send(new GetSecretValueCommand({ SecretId: secretArn }));
    let parsed: unknown;
    try {
      parsed = JSON.parse(response.SecretString ?? '');
    } catch {
      throw new ConfigurationError('DB_CONNECT_INFO_SECRET_ARN', `secret ${secretArn} does not hold a JSON object`);
    }
    return parseConnectInfo(parsed, `secret ${secretArn}`, 'DB_CONNECT_INFO_SECRET_ARN');
  } catch (error) {
    if (error instanceof ConfigurationError) throw error;
    throw new ConfigurationError('DB_CONNECT_INFO_SECRET_ARN', `reading secret ${secretArn} failed: ${messageOf(error)}`, {
      cause: error,
    });
  } finally {
    client.destroy();
  }
}

/**
 * Checks the keys of a connection-info object; names a missing key, never prints a value.
 * `variable` names where the object came from when it is not an object at all.
 */
export function parseConnectInfo(value: unknown, source: string, variable: string): DbConnectInfo {
  if (!isPlainObject(value)) {
    throw new ConfigurationError(variable, `${source} must be a JSON object with the database connection details`);
  }
  for (const key of ['host', 'user_database', 'user_username', 'user_password'] as const) {
    if (typeof value[key] !== 'string' || value[key] === '') {
      throw new ConfigurationError(key, `${source} must have a non-empty string "${key}"`);
    }
  }
  const port = Number(value['port']);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigurationError('port', `${source} must have a "port" between 1 and 65535`);
  }
  return {
    host: value['host'] as string,
    port,
    user_database: value['user_database'] as string,
    user_username: value['user_username'] as string,
    user_password: value['user_password'] as string,
  };
}

/**
 * Builds a Lambda handler for the Step Functions reconcile task. It validates the event, runs
 * {@link task} and returns `{ jobId, phantoms, orphans, mismatches }`.
 *
 * Create it once, at module scope: the database pool (and the secret it is built from) and the
 * SQS client are made on first use and reused by every later invocation in the container.
 * Defaults come from `INTERNAL_REPORT_QUEUE_URL`, `DB_CONNECT_INFO_SECRET_ARN` and `AWS_REGION`;
 * a missing one is a {@link ConfigurationError} naming it. A malformed event is an
 * {@link InvalidInputError} naming the field, raised before any database or queue call.
 *
 * @example
 * ```ts
 * import { createHandler } from 'orca-reconcile';
 *
 * export const handler = createHandler({ logger: console });
 * ```
 * @category Reconcile
 */
export function createHandler(options: HandlerOptions = {}): ReconcileHandler {
  const env = options.env ?? process.env;
  const logger = options.logger ?? silentLogger;
  let databasePromise: Promise<Database> | undefined;
  let ownedPool: pg.Pool | undefined;
  let ownedSqs: Promise<SQSClient> | undefined;

  const pieces = validatePieces(options.pieces);
  const concurrency = validateConcurrency(options.concurrency);
  const region = (): string => requireVariable(env, 'AWS_REGION');
  const endpointOption = options.sqsEndpoint === undefined ? undefined : validateEndpoint(options.sqsEndpoint, 'sqsEndpoint');

  /** The SQS endpoint to use instead of AWS: the option, else the SDK's environment variables. */
  function sqsEndpoint(): string | undefined {
    if (endpointOption !== undefined) return endpointOption;
    for (const variable of ['AWS_ENDPOINT_URL_SQS', 'AWS_ENDPOINT_URL']) {
      const value = env[variable];
      if (value !== undefined && value.trim() !== '') return validateEndpoint(value, variable);
    }
    return undefined;
  }

  async function buildPool(): Promise<Database> {
    const info = options.getDbConnectInfo
      ? parseConnectInfo(await options.getDbConnectInfo(), 'the result of getDbConnectInfo()', 'getDbConnectInfo')
      : await readSecret(requireVariable(env, 'DB_CONNECT_INFO_SECRET_ARN'), region());
    // Loaded here, so that importing the library does not load the driver.
    const { default: pgModule } = await import('pg');
    const pool = new pgModule.Pool({
      // A pieced run's copy uses one connection more than the pieces it runs at once.
      max: Math.max(2, concurrency + 1),
      connectionTimeoutMillis: 10_000,
      allowExitOnIdle: true,
      ...options.poolConfig,
      host: info.host,
      port: Number(info.port),
      database: info.user_database,
      user: info.user_username,
      password: info.user_password,
    });
    // An idle client losing its connection must not crash the container.
    pool.on('error', (error) => logger.warn('idle database connection failed', { error: messageOf(error) }));
    ownedPool = pool;
    logger.debug('database pool created', { host: info.host, port: Number(info.port), database: info.user_database });
    return pool;
  }

  /** Fails fast on missing configuration, before any network call. */
  function checkConfiguration(): void {
    if (!options.sqs) region();
    if (options.database === undefined && !options.getDbConnectInfo) {
      requireVariable(env, 'DB_CONNECT_INFO_SECRET_ARN');
      region();
    }
  }

  function database(): Promise<Database> {
    if (!databasePromise) {
      const source = options.database;
      const building = source === undefined ? buildPool() : Promise.resolve(typeof source === 'function' ? source() : source);
      databasePromise = building;
      // A failed build is not cached: the next invocation tries again.
      building.catch(() => {
        if (databasePromise === building) databasePromise = undefined;
      });
    }
    return databasePromise;
  }

  /**
   * Drops the pool built from the connection details, so that the next call of database() reads
   * them again. The old pool is ended in the background.
   */
  function dropOwnedPool(): void {
    const pool = ownedPool;
    ownedPool = undefined;
    databasePromise = undefined;
    pool?.end().catch((error: unknown) => logger.warn('ending the old database pool failed', { error: messageOf(error) }));
  }

  function sqs(): Promise<SqsSender> {
    if (options.sqs) return Promise.resolve(options.sqs);
    if (!ownedSqs) {
      const building = buildSqsClient(region(), sqsEndpoint());
      ownedSqs = building;
      building.catch(() => {
        if (ownedSqs === building) ownedSqs = undefined;
      });
    }
    return ownedSqs;
  }

  const timeoutMarginMs = options.timeoutMarginMs ?? DEFAULT_TIMEOUT_MARGIN_MS;
  if (typeof timeoutMarginMs !== 'number' || !Number.isFinite(timeoutMarginMs) || timeoutMarginMs < 0) {
    throw new InvalidInputError('timeoutMarginMs', `timeoutMarginMs must be a non-negative number, got ${String(timeoutMarginMs)}`);
  }

  const handler = async (event: unknown, context?: LambdaContextLike): Promise<ReconcileOutput | TaskStepOutput> => {
    const deadline = invocationDeadline(remainingTimeOf(context), timeoutMarginMs);
    const input = parseReconcileEvent(event);
    const step = isPlainObject(event) && Object.hasOwn(event, 'step') ? parseStep(event) : undefined;
    const queueUrl = options.queueUrl ?? requireVariable(env, 'INTERNAL_REPORT_QUEUE_URL');
    checkConfiguration();
    const endpoint = sqsEndpoint();
    // The handler's own client, built without an endpoint, sends to AWS.
    const target: SqsTarget = options.sqs === undefined && endpoint === undefined ? 'aws' : await sqsTarget(options.sqs, endpoint);
    checkQueueUrl(queueUrl, target, options.queueUrl === undefined);
    const sqsClient = await sqs();
    logger.debug('reconciliation started', {
      jobId: input.jobId,
      orcaArchiveLocation: input.orcaArchiveLocation,
      step: step?.step,
      requestId: requestIdOf(context),
    });
    const run = (db: Database): Promise<ReconcileOutput | TaskStepOutput> => {
      const dependencies = {
        database: db,
        sqs: sqsClient,
        sqsEndpoint: endpoint,
        logger,
        schema: options.schema,
        retry: options.retry,
        deadline,
        metrics: options.metrics,
        pieces,
        concurrency,
      };
      return step ? taskStep({ ...input, queueUrl, ...step }, dependencies) : task({ ...input, queueUrl }, dependencies);
    };
    const db = await database();
    try {
      return await run(db);
    } catch (error) {
      // A rotated secret: the pool still has the old password. Read the details once more.
      if (db !== ownedPool || !isInvalidPassword(error)) throw error;
      logger.warn('the database refused the password: reading the connection details again', {
        jobId: input.jobId,
        error: messageOf(error),
      });
      dropOwnedPool();
      return run(await database());
    }
  };

  // The overloads of ReconcileHandler tell which output an event gets; the one function serves both.
  return Object.assign(handler as ReconcileHandler, {
    async close(): Promise<void> {
      const pool = ownedPool;
      ownedPool = undefined;
      databasePromise = undefined;
      const client = ownedSqs;
      ownedSqs = undefined;
      (await client?.catch(() => undefined))?.destroy();
      await pool?.end();
    },
  });
}

/**
 * An SQS endpoint: an http:// or https:// URL. A bad option is an `InvalidInputError`, a bad
 * environment variable a `ConfigurationError`.
 */
function validateEndpoint(value: unknown, source: string): string {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    const message = `${source} must be an http:// or https:// URL, got ${describe(value)}`;
    throw source === 'sqsEndpoint' ? new InvalidInputError(source, message) : new ConfigurationError(source, message);
  }
  return value as string;
}

/** Checks the queue URL; one read from the environment says so in the message. */
function checkQueueUrl(queueUrl: string, target: SqsTarget, fromEnvironment: boolean): void {
  try {
    validateQueueUrl(queueUrl, 'queueUrl', target);
  } catch (error) {
    if (!fromEnvironment || !(error instanceof InvalidInputError)) throw error;
    throw new InvalidInputError('queueUrl', `${error.message} (read from INTERNAL_REPORT_QUEUE_URL)`, { cause: error });
  }
}

/** The SQS client the handler owns. The SDK is loaded here, on first use. */
async function buildSqsClient(region: string, endpoint: string | undefined): Promise<SQSClient> {
  const { SQSClient } = await import('@aws-sdk/client-sqs');
  return new SQSClient({
    region,
    ...(endpoint === undefined ? {} : { endpoint }),
    maxAttempts: 1,
    requestHandler: {
      connectionTimeout: SQS_CONNECTION_TIMEOUT_MS,
      requestTimeout: SQS_REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    },
  });
}

const REMAINING_TIME = 'context.getRemainingTimeInMillis';

/**
 * The invocation's remaining milliseconds, or undefined when the context does not tell (no
 * context, or no `getRemainingTimeInMillis`). A context that cannot tell properly is refused.
 */
function remainingTimeOf(context: unknown): number | undefined {
  if (context === undefined || context === null) return undefined;
  if (typeof context !== 'object' && typeof context !== 'function') {
    throw new InvalidInputError('context', `context must be a Lambda context object, got ${describe(context)}`);
  }
  let read: unknown;
  try {
    read = (context as Record<string, unknown>)['getRemainingTimeInMillis'];
  } catch (error) {
    throw new InvalidInputError(REMAINING_TIME, `${REMAINING_TIME} could not be read: ${messageOf(error)}`, { cause: error });
  }
  if (read === undefined) return undefined;
  if (typeof read !== 'function') {
    throw new InvalidInputError(REMAINING_TIME, `${REMAINING_TIME} must be a function, got ${describe(read)}`);
  }
  let remaining: unknown;
  try {
    remaining = (read as () => unknown).call(context);
  } catch (error) {
    throw new InvalidInputError(REMAINING_TIME, `${REMAINING_TIME}() failed: ${messageOf(error)}`, { cause: error });
  }
  if (typeof remaining !== 'number' || !Number.isFinite(remaining)) {
    throw new InvalidInputError(REMAINING_TIME, `${REMAINING_TIME}() must return a finite number of milliseconds, got ${describe(remaining)}`);
  }
  return remaining;
}

/** The request id, for a log line only: anything unreadable is left out. */
function requestIdOf(context: unknown): string | undefined {
  try {
    const id = (context as { awsRequestId?: unknown } | undefined)?.awsRequestId;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the database refused the password, here or in a cause. */
function isInvalidPassword(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth += 1) {
    if ((current as { code?: unknown }).code === INVALID_PASSWORD) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
