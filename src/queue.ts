import type { DeleteMessageCommand } from '@aws-sdk/client-sqs';
import { QueueError } from './errors.js';
import { type Backoff, retryError } from './retry.js';
import type { Logger } from './types.js';
import { validateQueueUrl, validateReceiptHandle } from './validation.js';

/**
 * The one thing the library asks of an SQS client. An `SQSClient` fits as it is.
 *
 * @example
 * ```ts
 * import { SQSClient } from '@aws-sdk/client-sqs';
 * import type { SqsSender } from 'orca-reconcile';
 *
 * const sqs: SqsSender = new SQSClient({ region: 'us-west-2' });
 * // A test double that records what it was asked to delete:
 * const sent: unknown[] = [];
 * const fake: SqsSender = { send: async (command) => sent.push(command.input) };
 * ```
 */
export interface SqsSender {
  send(command: DeleteMessageCommand): Promise<unknown>;
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
 * await removeJobFromQueue(sqs, { queueUrl, receiptHandle }, { retry: { maxRetries: 5 }, logger: console });
 * ```
 */
export interface RemoveJobOptions {
  /** Backoff for failed deletes. Every error is retried, 3 times by default. */
  retry?: Backoff;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * Deletes the job's message from the queue it came from, so SQS neither redelivers it nor moves
 * it to the dead-letter queue. Any failure is retried (3 retries with backoff by default); when
 * all fail, a {@link QueueError} carrying the last error as `cause` is thrown.
 *
 * The SDK is loaded here, on first use: importing the library does not load it.
 *
 * @example
 * ```ts
 * import { SQSClient } from '@aws-sdk/client-sqs';
 * import { removeJobFromQueue } from 'orca-reconcile';
 *
 * await removeJobFromQueue(new SQSClient({}), {
 *   queueUrl: process.env.INTERNAL_REPORT_QUEUE_URL!,
 *   receiptHandle: 'AQEB...',
 * });
 * ```
 */
export async function removeJobFromQueue(
  sqs: SqsSender,
  message: QueueMessage,
  options: RemoveJobOptions = {},
): Promise<void> {
  const queueUrl = validateQueueUrl(message?.queueUrl);
  const receiptHandle = validateReceiptHandle(message?.receiptHandle, 'receiptHandle');
  const { DeleteMessageCommand } = await import('@aws-sdk/client-sqs');
  const remove = retryError({ ...options.retry, logger: options.logger, operation: 'delete SQS message' })(async () => {
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }));
  });
  try {
    await remove();
  } catch (error) {
    throw new QueueError(queueUrl, error);
  }
}
