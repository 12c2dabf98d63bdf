import type { AddressInfo } from 'node:net';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type QueueAttributeName,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { buildApp } from 'fauxqs';
import { afterAll, beforeAll } from 'vitest';

/** The job message ORCA's earlier step puts on the internal report queue. */
export interface JobMessageBody {
  jobId: number;
  orcaArchiveLocation: string;
}

/** A job message as a worker receives it: the receipt handle is a real one from ReceiveMessage. */
export interface ReceivedJobMessage {
  messageId: string;
  receiptHandle: string;
  body: JobMessageBody;
}

/** The messages a queue holds, by state. */
export interface MessageCounts {
  ready: number;
  inFlight: number;
  delayed: number;
}

/** One queue on the emulator, with what the tests need to drive and inspect it. */
export interface TestQueue {
  name: string;
  url: string;
  fifo: boolean;
  /** Sends a job message, then receives it so that it is in flight with a real receipt handle. */
  sendAndReceiveJob(body: JobMessageBody): Promise<ReceivedJobMessage>;
  /** Receives the next visible message, or undefined when none is visible. */
  receive(): Promise<(ReceivedJobMessage & { receiveCount: number }) | undefined>;
  /** The messages the queue holds, by state. */
  messageCounts(): Promise<MessageCounts>;
  /** Messages still held by the queue: ready, in flight and delayed. */
  messagesLeft(): Promise<number>;
  /** Ends the visibility timeout of a received message, as SQS does when it lapses. */
  makeVisible(receiptHandle: string): Promise<void>;
}

/** An in-process SQS emulator on a loopback port and a real SQSClient pointed at it. */
export interface TestSqs {
  /** Where the emulator listens: 127.0.0.1 and a port the OS chose. */
  address: AddressInfo;
  /** `http://127.0.0.1:PORT`, for clients the test does not build itself. */
  endpoint: string;
  sqs: SQSClient;
  /** A queue of its own for one test. FIFO queues use content-based deduplication, as ORCA's does. */
  createQueue(options?: { fifo?: boolean }): Promise<TestQueue>;
}

let queueCounter = 0;

async function startTestSqs(): Promise<TestSqs & { close(): Promise<void> }> {
  // Built and bound here rather than with startFauxqs, which listens on every interface whatever
  // its `host` option says (that option only names the host in queue URLs).
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${address.port}`;
  const sqs = new SQSClient({
    // With an explicit endpoint the SDK never sends to the host in a queue URL.
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    // One HTTP attempt per send: the library's own retries are what the tests observe.
    maxAttempts: 1,
  });

  async function createQueue(options: { fifo?: boolean } = {}): Promise<TestQueue> {
    const fifo = options.fifo ?? false;
    queueCounter += 1;
    const name = `orca-internal-report-${process.pid}-${queueCounter}${fifo ? '.fifo' : ''}`;
    const { QueueUrl: queueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: fifo ? { FifoQueue: 'true', ContentBasedDeduplication: 'true' } : {},
      }),
    );
    if (!queueUrl) throw new Error(`test fixture: the emulator created queue ${name} without a URL`);

    const receive: TestQueue['receive'] = async () => {
      const { Messages } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 1,
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      const message = Messages?.[0];
      if (!message) return undefined;
      if (!message.MessageId || !message.ReceiptHandle || message.Body === undefined) {
        throw new Error('test fixture: received a message without id, receipt handle or body');
      }
      return {
        messageId: message.MessageId,
        receiptHandle: message.ReceiptHandle,
        body: JSON.parse(message.Body) as JobMessageBody,
        receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? Number.NaN),
      };
    };

    // The emulator counts exactly: these are the messages it holds, not estimates.
    const messageCounts = async (): Promise<MessageCounts> => {
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
        }),
      );
      const count = (attribute: QueueAttributeName) => Number(Attributes?.[attribute] ?? Number.NaN);
      return {
        ready: count('ApproximateNumberOfMessages'),
        inFlight: count('ApproximateNumberOfMessagesNotVisible'),
        delayed: count('ApproximateNumberOfMessagesDelayed'),
      };
    };

    return {
      name,
      url: queueUrl,
      fifo,
      receive,
      messageCounts,
      async sendAndReceiveJob(body) {
        // One message group per job, so a job whose message stays in flight never blocks another.
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: JSON.stringify(body),
            ...(fifo ? { MessageGroupId: `reconcile-job-${body.jobId}` } : {}),
          }),
        );
        const received = await receive();
        if (!received || received.body.jobId !== body.jobId) {
          throw new Error(`test fixture: could not receive the message of job ${body.jobId} from ${name}`);
        }
        return { messageId: received.messageId, receiptHandle: received.receiptHandle, body: received.body };
      },
      async messagesLeft() {
        const { ready, inFlight, delayed } = await messageCounts();
        return ready + inFlight + delayed;
      },
      async makeVisible(receiptHandle) {
        await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: 0 }));
      },
    };
  }

  return {
    address,
    endpoint,
    sqs,
    createQueue,
    async close() {
      sqs.destroy();
      await app.close();
    },
  };
}

/**
 * Starts the SQS emulator before the tests of the enclosing describe (or file) and stops it after
 * them; with `enabled` false it starts nothing. The handle it returns is usable from the first
 * test or later hook on.
 */
export function useTestSqs(enabled = true): TestSqs {
  let started: Awaited<ReturnType<typeof startTestSqs>> | undefined;
  const current = (): TestSqs => {
    if (!started) throw new Error('test fixture: the SQS emulator is not running: use it inside a hook or a test of a describe that starts it');
    return started;
  };
  beforeAll(async () => {
    if (enabled) started = await startTestSqs();
  });
  afterAll(async () => {
    await started?.close();
    started = undefined;
  });
  return {
    get address() {
      return current().address;
    },
    get endpoint() {
      return current().endpoint;
    },
    get sqs() {
      return current().sqs;
    },
    createQueue: (options) => current().createQueue(options),
  };
}
