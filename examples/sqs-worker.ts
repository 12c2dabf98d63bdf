// A long-running worker that takes reconcile jobs straight from the job queue, outside Lambda.
//
// Each message body is `{ "jobId": 1, "orcaArchiveLocation": "prefix-orca-primary" }`. `task`
// deletes the message itself, and only after the reports and the `success` status have
// committed; on failure the message stays, SQS redelivers it after its visibility timeout and,
// after the queue's maximum receive count, moves it to the dead-letter queue. So sqs-consumer is
// told never to delete messages.
//
// Environment: INTERNAL_REPORT_QUEUE_URL, DATABASE_URL, AWS_REGION (and the usual AWS credentials).
import { SQSClient } from '@aws-sdk/client-sqs';
import pg from 'pg';
import { Consumer } from 'sqs-consumer';
import { parseReconcileEvent, task } from 'orca-reconcile';

const queueUrl = process.env.INTERNAL_REPORT_QUEUE_URL;
if (!queueUrl) throw new Error('set INTERNAL_REPORT_QUEUE_URL');

// One pool and one SQS client for the life of the worker. Jobs run one at a time, so two
// connections are enough: `task` uses one per transaction.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
pool.on('error', (error) => console.warn('idle database connection failed', error.message));
const sqs = new SQSClient({});
// The delete `task` makes retries 3 times itself: its client makes one request per try, with a
// request timeout, so retries do not multiply with the SDK's own.
const deleter = new SQSClient({ maxAttempts: 1, requestHandler: { requestTimeout: 5_000, throwOnRequestTimeout: true } });

const consumer = Consumer.create({
  queueUrl,
  sqs,
  batchSize: 1,
  // The message must stay hidden while a job runs: extend its visibility every minute.
  visibilityTimeout: 300,
  heartbeatInterval: 60,
  // `task` deletes the message; sqs-consumer must not delete it, even when the handler resolves.
  shouldDeleteMessages: false,
  // ORCA's job queue is FIFO; one message at a time keeps its order.
  suppressFifoWarning: true,
  // On stop, wait for the job in hand to finish (at most 15 minutes). If the host kills the
  // process sooner, the message comes back after its visibility timeout and the next run
  // completes the job.
  pollingCompleteWaitTimeMs: 15 * 60_000,
  handleMessage: async (message) => {
    // The same checks as the Lambda handler's event: an InvalidInputError names the bad field.
    const body: unknown = JSON.parse(message.Body ?? '');
    const { jobId, orcaArchiveLocation, messageReceiptHandle } = parseReconcileEvent({
      event: { ...(body as object), messageReceiptHandle: message.ReceiptHandle },
    });
    // Logs "reconciliation finished" with the counts and durationMs; throws on failure, which
    // leaves the message in the queue.
    await task(
      { jobId, orcaArchiveLocation, queueUrl, messageReceiptHandle },
      { database: pool, sqs: deleter, logger: console },
    );
    return message;
  },
});

consumer.on('error', (error) => console.error('sqs error', error.message));
consumer.on('processing_error', (error) => console.error('job failed', error.message));

// On SIGTERM: receive no more jobs, let the current long poll (up to 20 s) and the job in hand
// finish, then close the pool and the SQS client; the process then exits on its own.
process.once('SIGTERM', () => {
  consumer.once('stopped', () => {
    void pool.end().then(() => {
      sqs.destroy();
      deleter.destroy();
    });
  });
  consumer.stop();
});

consumer.start();
