import { retry } from 'ts-retry-promise';
import { InvalidInputError, messageOf, sqlStateOf } from './errors.js';
import type { Logger } from './types.js';

/**
 * How {@link retryError} spaces and limits its attempts.
 *
 * @example
 * ```ts
 * import { retryError, type RetryOptions } from 'orca-reconcile';
 *
 * // No real waiting in a test: record the waits instead.
 * const waits: number[] = [];
 * const options: RetryOptions = { maxRetries: 2, random: () => 0, sleep: async (ms) => void waits.push(ms) };
 * await retryError(options)(async () => 'done')();
 * ```
 * @category Reconcile
 */
export interface RetryOptions {
  /** Retries after the first attempt. Default 3. */
  maxRetries?: number;
  /** Wait before the first retry, in seconds, before jitter. Default 1. */
  backoffInSeconds?: number;
  /** Multiplier applied to the wait for each further retry. Default 2. */
  backoffFactor?: number;
  /** Decides whether a failure is worth another attempt. Default: every failure is. */
  shouldRetry?: (error: unknown) => boolean;
  /** Waits the given milliseconds. Inject a fake to test without real time. */
  sleep?: (milliseconds: number) => Promise<void>;
  /** Returns a number in [0, 1) for the jitter. Default `Math.random`. */
  random?: () => number;
  /** Told about each retry before its wait. */
  logger?: Pick<Logger, 'warn'>;
  /** Name of the operation, used in log lines. */
  operation?: string;
  /** Epoch milliseconds after which no retry starts: a retry whose wait would end later is not made. */
  deadline?: number;
  /** Current epoch milliseconds, for the deadline. Default `Date.now`. */
  now?: () => number;
}

/**
 * The spacing of retries, as callers of {@link task}, {@link generateReports} and the other
 * functions set it: how many retries and how long between them. Which errors are retried, and
 * until when, is each function's own rule.
 *
 * @example
 * ```ts
 * import { generateReports, type Backoff } from 'orca-reconcile';
 *
 * const patient: Backoff = { maxRetries: 5, backoffInSeconds: 2, backoffFactor: 3 };
 * await generateReports(pool, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' }, { retry: patient });
 * ```
 * @category Reconcile
 */
export type Backoff = Pick<RetryOptions, 'maxRetries' | 'backoffInSeconds' | 'backoffFactor' | 'sleep' | 'random' | 'now'>;

const defaultSleep = (milliseconds: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, milliseconds));

function nonNegativeNumber(value: unknown, field: string, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new InvalidInputError(
      field,
      `${field} must be a non-negative ${integer ? 'integer' : 'finite number'}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Milliseconds to wait before retry `retryIndex` (0 for the first retry):
 * `backoffInSeconds * backoffFactor ** retryIndex` seconds plus up to one second of jitter.
 */
export function backoffDelay(
  retryIndex: number,
  backoffInSeconds: number,
  backoffFactor: number,
  random: () => number,
): number {
  return (backoffInSeconds * backoffFactor ** retryIndex + random()) * 1000;
}

/**
 * Returns a wrapper that retries an async function with exponential backoff and jitter:
 * before retry n (n = 0, 1, 2, ...) it waits `backoffInSeconds * backoffFactor^n` seconds plus
 * a uniform random 0 to 1 s. After the last retry fails, or as soon as `shouldRetry` says no,
 * the error of the last attempt is thrown as it is.
 *
 * @example
 * ```ts
 * import { retryError, isTransientDatabaseError } from 'orca-reconcile';
 *
 * const countJobs = retryError({ maxRetries: 3, shouldRetry: isTransientDatabaseError })(
 *   async () => (await pool.query('SELECT count(*) FROM orca.reconcile_job')).rows[0],
 * );
 * console.log(await countJobs());
 * ```
 * @category Reconcile
 */
export function retryError(options: RetryOptions = {}) {
  const maxRetries = nonNegativeNumber(options.maxRetries ?? 3, 'maxRetries', true);
  const backoffInSeconds = nonNegativeNumber(options.backoffInSeconds ?? 1, 'backoffInSeconds', false);
  const backoffFactor = nonNegativeNumber(options.backoffFactor ?? 2, 'backoffFactor', false);
  const shouldRetry = options.shouldRetry ?? (() => true);
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const operation = options.operation ?? 'operation';

  const now = options.now ?? Date.now;
  const deadline = options.deadline;

  return <Args extends unknown[], Result>(fn: (...args: Args) => Promise<Result>) =>
    async (...args: Args): Promise<Result> => {
      let attempt = 0;
      let lastError: unknown;
      let nextWait = 0;
      const worthRetrying = (error: unknown): boolean =>
        shouldRetry(error) && (deadline === undefined || now() + nextWait < deadline);
      try {
        // ts-retry-promise counts and stops the attempts; the wait happens here so that it follows
        // the spec's backoff and can be injected.
        return await retry(
          async () => {
            if (attempt > 0) await sleep(nextWait);
            attempt += 1;
            try {
              return await fn(...args);
            } catch (error) {
              lastError = error;
              nextWait = backoffDelay(attempt - 1, backoffInSeconds, backoffFactor, random);
              if (attempt <= maxRetries && worthRetrying(error)) {
                options.logger?.warn(`${operation} failed, retry ${attempt} of ${maxRetries}: ${messageOf(error)}`);
              }
              throw error;
            }
          },
          { retries: maxRetries, delay: 0, timeout: 'INFINITELY', retryIf: worthRetrying },
        );
      } catch (error) {
        // When every attempt failed the library throws its own summary error: surface the real one.
        throw attempt > 0 ? lastError : error;
      }
    };
}

// SQLSTATEs after which the same statement may well succeed on a fresh attempt.
const TRANSIENT_SQLSTATES = new Set([
  '08000', // connection_exception
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08003', // connection_does_not_exist
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
  '08006', // connection_failure
  '08P01', // protocol_violation (a connection cut mid-message)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
]);

const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /terminating connection/i,
  /connection (?:was )?(?:lost|closed|refused|reset)/i,
  /client has encountered a connection error/i,
  /timeout exceeded when trying to connect/i,
];

/**
 * Tells whether a database error is worth retrying: a lost, refused or reset connection, an
 * administrator shutdown, too many connections, a serialization failure or a deadlock.
 * Constraint violations, syntax errors, timeouts and the like are not.
 *
 * @example
 * ```ts
 * import { isTransientDatabaseError } from 'orca-reconcile';
 *
 * isTransientDatabaseError(Object.assign(new Error('deadlock detected'), { code: '40P01' })); // true
 * isTransientDatabaseError(Object.assign(new Error('duplicate key'), { code: '23505' })); // false
 * ```
 * @category Reconcile
 */
export function isTransientDatabaseError(error: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = error;
  // Wrapped errors (ours, or an AggregateError from a multi-address connect) carry the driver's.
  while (typeof current === 'object' && current !== null && !seen.has(current)) {
    seen.add(current);
    const sqlState = sqlStateOf(current);
    if (sqlState !== undefined) return TRANSIENT_SQLSTATES.has(sqlState);
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_NODE_CODES.has(code)) return true;
    if (current instanceof AggregateError && current.errors.some((inner) => isTransientDatabaseError(inner))) return true;
    const message = (current as { message?: unknown }).message;
    if (typeof message === 'string' && TRANSIENT_MESSAGES.some((pattern) => pattern.test(message))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
