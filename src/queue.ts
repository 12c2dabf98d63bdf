import type { DeleteMessageCommand } from '@aws-sdk/client-sqs';
import { QueueError, messageOf } from './errors.js';
import { timeoutError } from './deadline.js';
import { type Backoff, retryError } from './retry.js';
import type { Logger } from './types.js';
import { type SqsTarget, validateDeadline, validateQueueUrl, validateReceiptHandle } from './validation.js';

/**
 * The one thing the library asks of an SQS client. An `SQSClient` fits as it is.
 *
 * `send` is given an `abortSignal` that fires at the run's deadline; a client that ignores it is
 * still not waited for past the deadline.
 *
 * @example
 * ```ts
 * import { SQSClient } from '@aws-sdk/client-sqs';
 * import type { SqsSender } from 'orca-reconcile';
 *
 * const sqs: SqsSender = new SQSClient({ region: 'us-west-2', maxAttempts: 1 });
 * // A test double that records what it was asked to delete:
 * const sent: unknown[] = [];
 * const fake: SqsSender = { send: async (command) => sent.push(command.input) };
 * ```
 * @category Queue
 */
export interface SqsSender {
  send(command: DeleteMessageCommand, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

/**
 * The message to delete.
 *
 * @example
 * ```ts
 * import type { QueueMessage } from 'orca-reconcile';
 *
 * const message: QueueMessage = {
 *   queueUrl: 'https://sqs.us-west-2.amazonaws.com/123456789012/prefix-orca-internal-report-queue.fifo',
 *   receiptHandle: 'AQEB...',
 * };
 * ```
 * @category Queue
 */
export interface QueueMessage {
  /** URL of the queue the job message came from. */
  queueUrl: string;
  /** Receipt handle of the received message. */
  receiptHandle: string;
}

/**
 * Options of {@link removeJobFromQueue}.
 *
 * @example
 * ```ts
 * import { removeJobFromQueue } from 'orca-reconcile';
 *
 * await removeJobFromQueue(sqs, { queueUrl, receiptHandle }, {
 *   retry: { maxRetries: 5 },
 *   deadline: Date.now() + 30_000,
 *   logger: console,
 * });
 * ```
 * @category Queue
 */
export interface RemoveJobOptions {
  /**
   * Backoff for failed deletes: 3 retries by default, of every failure but the permanent ones
   * (see {@link removeJobFromQueue}). These retries come on top of the client's own: give an
   * `SQSClient` `maxAttempts: 1`, or each retry here is up to `maxAttempts` requests.
   */
  retry?: Backoff;
  /**
   * Epoch milliseconds by which the delete must be over, retries and their waits included. The
   * request in flight is aborted then, no retry starts whose wait would end later, and a
   * {@link QueueError} is thrown.
   */
  deadline?: number;
  /**
   * The SQS endpoint the client sends to, when it is not AWS (a local emulator): `queueUrl` may
   * then be on its host. Default: for an `SQSClient`, the `endpoint` it was built with, if any.
   */
  sqsEndpoint?: string;
  logger?: Pick<Logger, 'warn'>;
}

// Failures that another attempt cannot mend, by the error name the SDK gives them, its
// query-protocol `Code` or the wire `__type`, with what each means.
const PERMANENT_FAILURES: ReadonlyMap<string, string> = new Map([
  ['ReceiptHandleIsInvalid', 'the receipt handle is not one this queue issued'],
  ['InvalidIdFormat', 'the receipt handle is not one this queue issued'],
  ['QueueDoesNotExist', 'the queue does not exist: check the queue URL'],
  ['AWS.SimpleQueueService.NonExistentQueue', 'the queue does not exist: check the queue URL'],
  ['InvalidAddress', 'the queue URL is not valid for this endpoint'],
  ['AccessDenied', 'the credentials are not allowed sqs:DeleteMessage on this queue'],
  ['AccessDeniedException', 'the credentials are not allowed sqs:DeleteMessage on this queue'],
  ['InvalidSecurity', 'the request is not secure enough for this queue (HTTPS and Signature Version 4 are required)'],
  ['InvalidClientTokenId', 'the AWS access key is not valid'],
  ['UnrecognizedClientException', 'the AWS access key is not valid'],
  ['CredentialsProviderError', 'no AWS credentials could be loaded'],
]);

/**
 * What a permanent delete failure means, or undefined when another attempt might succeed. Looks
 * at the error's name, its query-protocol `Code` and the wire `__type` (after its namespace).
 */
function permanentQueueFailure(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  for (const key of ['name', 'Code', '__type'] as const) {
    const value = (error as Record<string, unknown>)[key];
    const code = typeof value === 'string' ? value.slice(value.indexOf('#') + 1) : undefined;
    if (code !== undefined && PERMANENT_FAILURES.has(code)) return PERMANENT_FAILURES.get(code);
  }
  return undefined;
}

/**
 * Where a delete goes, to check a queue URL against: the endpoint the caller named, or else what
 * {@link sqsTargetOf} tells of the client.
 */
export function sqsTarget(sqs: unknown, sqsEndpoint: string | undefined): Promise<SqsTarget> {
  return sqsEndpoint === undefined ? sqsTargetOf(sqs) : Promise.resolve({ endpoint: sqsEndpoint });
}

/**
 * Where a client sends: for an `SQSClient`, AWS or the `endpoint` it was built with; for anything
 * else with a `send` method (a wrapper, a test double), the library cannot tell.
 */
export async function sqsTargetOf(sqs: unknown): Promise<SqsTarget> {
  try {
    const config = (sqs as { config?: { isCustomEndpoint?: unknown; endpoint?: unknown } } | undefined)?.config;
    if (typeof config?.isCustomEndpoint !== 'boolean') return 'unknown';
    if (!config.isCustomEndpoint) return 'aws';
    if (typeof config.endpoint !== 'function') return 'unknown';
    const endpoint = (await (config.endpoint as () => Promise<unknown>)()) as
      | { protocol?: unknown; hostname?: unknown; port?: unknown }
      | undefined;
    if (typeof endpoint?.protocol !== 'string' || typeof endpoint.hostname !== 'string') return 'unknown';
    const port = typeof endpoint.port === 'number' || typeof endpoint.port === 'string' ? `:${endpoint.port}` : '';
    const host = endpoint.hostname.includes(':') && !endpoint.hostname.startsWith('[') ? `[${endpoint.hostname}]` : endpoint.hostname;
    return { endpoint: `${endpoint.protocol}//${host}${port}` };
  } catch {
    return 'unknown';
  }
}

/**
 * Deletes the job's message from the queue it came from, so SQS neither redelivers it nor moves
 * it to the dead-letter queue.
 *
 * A failure is retried (3 retries with backoff by default), except a permanent one, which is
 * thrown at once: an invalid receipt handle, a queue that does not exist, access denied, missing
 * or invalid credentials. With a `deadline`, the whole delete (every attempt and every wait) ends
 * by then. When the delete fails, a {@link QueueError} carrying the last error as `cause` is
 * thrown; its message says whether the failure is permanent and why.
 *
 * The `queueUrl` is checked first: the path `/<12-digit account id>/<queue name>`, and
 * `https://` on an SQS host, or on the host of the client's endpoint (`options.sqsEndpoint`, or
 * the `endpoint` an `SQSClient` was built with). The host of a client the library cannot inspect
 * (not an `SQSClient`, no `sqsEndpoint`) is not checked. A bad URL is an `InvalidInputError`, and
 * nothing is sent.
 *
 * The SDK is loaded here, on first use: importing the library does not load it.
 *
 * @example
 * ```ts
 * import { SQSClient } from '@aws-sdk/client-sqs';
 * import { removeJobFromQueue } from 'orca-reconcile';
 *
 * await removeJobFromQueue(new SQSClient({ maxAttempts: 1 }), {
 *   queueUrl: process.env.INTERNAL_REPORT_QUEUE_URL!,
 *   receiptHandle: 'AQEB...',
 * }, { deadline: Date.now() + 20_000 });
 * ```
 * @category Queue
 */
export async function removeJobFromQueue(
  sqs: SqsSender,
  message: QueueMessage,
  options: RemoveJobOptions = {},
): Promise<void> {
  const target = await sqsTarget(sqs, options.sqsEndpoint);
  const queueUrl = validateQueueUrl(message?.queueUrl, 'queueUrl', target);
  const receiptHandle = validateReceiptHandle(message?.receiptHandle, 'receiptHandle');
  const deadline = options.deadline === undefined ? undefined : validateDeadline(options.deadline, 'deadline');
  const startedAt = Date.now();
  if (deadline !== undefined && deadline <= startedAt) {
    throw queueError(queueUrl, timeoutError({ at: deadline, startedAt }, 'delete SQS message'));
  }
  const { DeleteMessageCommand } = await import('@aws-sdk/client-sqs');

  // At the deadline: abort the request in flight, and stop waiting for a client that ignores it.
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A timer further ahead than setTimeout can count (2^31-1 ms, about 24.8 days) would fire at
  // once: such a deadline is as good as none.
  const timedOut =
    deadline === undefined || deadline - startedAt > MAX_TIMER_MS
      ? undefined
      : new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => {
            const error = timeoutError({ at: deadline, startedAt }, 'delete SQS message');
            abort.abort(error);
            reject(error);
          }, Math.max(0, deadline - Date.now()));
        });

  const remove = retryError({
    ...options.retry,
    deadline,
    shouldRetry: (error) => permanentQueueFailure(error) === undefined && !abort.signal.aborted,
    logger: options.logger,
    operation: 'delete SQS message',
  })(async () => {
    abort.signal.throwIfAborted();
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }), {
      abortSignal: abort.signal,
    });
  });
  try {
    await (timedOut ? Promise.race([remove(), timedOut]) : remove());
  } catch (error) {
    throw queueError(queueUrl, abort.signal.aborted ? abort.signal.reason : error);
  } finally {
    clearTimeout(timer);
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;

function queueError(queueUrl: string, cause: unknown): QueueError {
  const error = new QueueError(queueUrl, cause);
  const reason = permanentQueueFailure(cause);
  if (reason !== undefined) {
    // Set before the stack is first read, so the stack shows it too.
    error.message = `deleting the message from ${queueUrl} failed permanently, so it was not retried: ${reason} (${messageOf(cause)})`;
  }
  return error;
}
