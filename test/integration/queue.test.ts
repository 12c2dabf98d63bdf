import { DeleteMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { InvalidInputError, QueueError, removeJobFromQueue, type SqsSender } from '../../src/index.js';
import { recordedBackoff } from '../helpers/faults.js';
import { recordCalls } from '../helpers/recording.js';
import { useTestSqs } from '../helpers/sqs.js';

const QUEUE_URL = 'http://127.0.0.1:9/000000000000/orca-internal-report.fifo';

/**
 * An SQS client double that fails the first `failures` sends, then succeeds. Used only for
 * faults no real endpoint can be made to produce on demand, such as throttling.
 */
function flakySqs(failures: number): SqsSender & { commands: DeleteMessageCommand[]; errors: Error[] } {
  const commands: DeleteMessageCommand[] = [];
  const errors: Error[] = [];
  return {
    commands,
    errors,
    async send(command) {
      commands.push(command);
      if (commands.length <= failures) {
        const error = Object.assign(new Error(`Rate exceeded (attempt ${commands.length})`), { name: 'ThrottlingException' });
        errors.push(error);
        throw error;
      }
      return {};
    },
  };
}

describe('removeJobFromQueue', () => {
  const sqs = useTestSqs();

  it('talks to an emulator that listens on 127.0.0.1 only', async () => {
    // Act
    const clientEndpoint = await sqs.sqs.config.endpoint?.();

    // Assess: the socket the emulator bound, and where the client sends.
    expect(sqs.address).toMatchObject({ address: '127.0.0.1', family: 'IPv4' });
    expect(sqs.endpoint).toBe(`http://127.0.0.1:${sqs.address.port}`);
    expect(clientEndpoint).toMatchObject({ hostname: '127.0.0.1', port: sqs.address.port });
  });

  it.each([
    ['a FIFO queue with content-based deduplication', true],
    ['a standard queue', false],
  ])('deletes a received message from %s', async (_label, fifo) => {
    // Prepare
    const queue = await sqs.createQueue({ fifo });
    const message = await queue.sendAndReceiveJob({ jobId: 7, orcaArchiveLocation: 'prefix-orca-primary' });
    const client = recordCalls(sqs.sqs);
    expect(await queue.messagesLeft()).toBe(1);

    // Act
    await removeJobFromQueue(client.spy, { queueUrl: queue.url, receiptHandle: message.receiptHandle });

    // Assess
    expect(await queue.messagesLeft()).toBe(0);
    expect(client.calls).toEqual(['send']);
  });

  it('leaves other messages of the queue alone', async () => {
    // Prepare
    const queue = await sqs.createQueue({ fifo: true });
    const first = await queue.sendAndReceiveJob({ jobId: 1, orcaArchiveLocation: 'prefix-orca-primary' });
    const second = await queue.sendAndReceiveJob({ jobId: 2, orcaArchiveLocation: 'prefix-orca-primary' });

    // Act
    await removeJobFromQueue(sqs.sqs, { queueUrl: queue.url, receiptHandle: first.receiptHandle });

    // Assess: one message is left, still in flight, and it is job 2's.
    expect(await queue.messageCounts()).toEqual({ ready: 0, inFlight: 1, delayed: 0 });
    await queue.makeVisible(second.receiptHandle);
    expect((await queue.receive())?.body).toEqual({ jobId: 2, orcaArchiveLocation: 'prefix-orca-primary' });
  });

  it('retries a throttled delete (client double: injected fault)', async () => {
    // Prepare
    const client = flakySqs(2);
    const { waits, retry } = recordedBackoff(0.5);

    // Act
    await removeJobFromQueue(client, { queueUrl: QUEUE_URL, receiptHandle: 'handle-1' }, { retry });

    // Assess
    expect(client.commands).toHaveLength(3);
    for (const command of client.commands) {
      expect(command).toBeInstanceOf(DeleteMessageCommand);
      expect(command.input).toEqual({ QueueUrl: QUEUE_URL, ReceiptHandle: 'handle-1' });
    }
    // 1 s * 2^n plus 0.5 s of jitter before retry n.
    expect(waits).toEqual([1500, 2500]);
  });

  it('throws QueueError with the last failure as cause after 3 retries (client double: injected fault)', async () => {
    // Prepare
    const client = flakySqs(Number.POSITIVE_INFINITY);
    const { waits, retry } = recordedBackoff(0.5);
    const { logger, lines } = (() => {
      const kept: string[] = [];
      return { logger: { warn: (line: string) => void kept.push(line) }, lines: kept };
    })();

    // Act
    const error = await removeJobFromQueue(
      client,
      { queueUrl: QUEUE_URL, receiptHandle: 'handle-1' },
      { retry, logger },
    ).catch((thrown: unknown) => thrown);

    // Assess
    expect(error).toBeInstanceOf(QueueError);
    expect(error).toMatchObject({ code: 'QUEUE', queueUrl: QUEUE_URL });
    expect(client.commands).toHaveLength(4);
    expect((error as QueueError).cause).toBe(client.errors[3]);
    expect((error as Error).message).toContain('Rate exceeded (attempt 4)');
    expect(waits).toEqual([1500, 2500, 4500]);
    expect(lines).toHaveLength(3);
  });

  it('throws QueueError from a real endpoint when the queue does not exist', async () => {
    // Prepare
    const queue = await sqs.createQueue();
    const message = await queue.sendAndReceiveJob({ jobId: 3, orcaArchiveLocation: 'prefix-orca-primary' });
    const missingQueueUrl = queue.url.replace(queue.name, 'orca-no-such-queue');
    const client = recordCalls(sqs.sqs);
    const { waits, retry } = recordedBackoff(0.5);

    // Act
    const error = await removeJobFromQueue(
      client.spy,
      { queueUrl: missingQueueUrl, receiptHandle: message.receiptHandle },
      { retry },
    ).catch((thrown: unknown) => thrown);

    // Assess
    expect(error).toBeInstanceOf(QueueError);
    expect(error).toMatchObject({ queueUrl: missingQueueUrl, cause: { name: 'QueueDoesNotExist' } });
    // A queue that does not exist is a permanent failure: not retried.
    expect(client.calls).toEqual(['send']);
    expect(waits).toEqual([]);
    expect(await queue.messagesLeft()).toBe(1);
  });

  it.each([
    ['an empty queueUrl', { queueUrl: '', receiptHandle: 'h' }, 'queueUrl'],
    ['an empty receiptHandle', { queueUrl: QUEUE_URL, receiptHandle: '' }, 'receiptHandle'],
    ['a receiptHandle that is not a string', { queueUrl: QUEUE_URL, receiptHandle: 5 }, 'receiptHandle'],
  ])('rejects %s before any send', async (_label, message, field) => {
    // Prepare
    const client = flakySqs(0);

    // Act
    const failure = removeJobFromQueue(client, message as { queueUrl: string; receiptHandle: string });

    // Assess
    await expect(failure).rejects.toBeInstanceOf(InvalidInputError);
    await expect(failure).rejects.toMatchObject({ field });
    expect(client.commands).toHaveLength(0);
  });
});
