import {
  ChangeMessageVisibilityCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { type FauxqsServer, startFauxqs } from 'fauxqs';

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

/** One queue on the emulator, with what the tests need to drive and inspect it. */
export interface TestQueue {
  name: string;
  url: string;
  fifo: boolean;
  /** Sends a job message, then receives it so that it is in flight with a real receipt handle. */
  sendAndReceiveJob(body: JobMessageBody): Promise<ReceivedJobMessage>;
  /** Receives the next visible message, or undefined when none is visible. */
  receive(): Promise<(ReceivedJobMessage & { receiveCount: number }) | undefined>;
  /** Messages still held by the queue: ready, in flight and delayed. */
  messagesLeft(): number;
  /** Ends the visibility timeout of a received message, as SQS does when it lapses. */
  makeVisible(receiptHandle: string): Promise<void>;
}

/** An in-process SQS emulator on a loopback port and a real SQSClient pointed at it. */
export interface TestSqs {
  server: FauxqsServer;
  sqs: SQSClient;
  /** A queue of its own for one test. FIFO queues use content-based deduplication, as ORCA's does. */
  createQueue(options?: { fifo?: boolean }): TestQueue;
  close(): Promise<void>;
}

let queueCounter = 0;

export async function startTestSqs(): Promise<TestSqs> {
  const server = await startFauxqs({ port: 0, logger: false });
  const sqs = new SQSClient({
    // Always the loopback address: with an explicit endpoint the SDK never sends to the host in a queue URL.
    endpoint: `http://127.0.0.1:${server.port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    // One HTTP attempt per send: the library's own retries are what the tests observe.
    maxAttempts: 1,
  });

  function createQueue(options: { fifo?: boolean } = {}): TestQueue {
    const fifo = options.fifo ?? false;
    queueCounter += 1;
    const name = `orca-internal-report-${process.pid}-${queueCounter}${fifo ? '.fifo' : ''}`;
    const { queueUrl } = server.createQueue(name, {
      attributes: fifo ? { FifoQueue: 'true', ContentBasedDeduplication: 'true' } : {},
    });

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

    return {
      name,
      url: queueUrl,
      fifo,
      receive,
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
      messagesLeft() {
        const state = server.inspectQueue(name);
        if (!state) throw new Error(`test fixture: queue ${name} is gone`);
        return state.messages.ready.length + state.messages.inflight.length + state.messages.delayed.length;
      },
      async makeVisible(receiptHandle) {
        await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: 0 }));
      },
    };
  }

  return {
    server,
    sqs,
    createQueue,
    async close() {
      sqs.destroy();
      await server.stop();
    },
  };
}
