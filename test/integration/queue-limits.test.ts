import { SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  OrcaStatus,
  QueueError,
  TimeoutError,
  createHandler,
  removeJobFromQueue,
  type HandlerOptions,
  type LambdaContextLike,
  type SqsSender,
} from '../../src/index.js';
import { useOrcaSchema } from '../helpers/database.js';
import { noWait, recordedBackoff } from '../helpers/faults.js';
import { insertJob, readJob, readReports, seedOneOfEachReport } from '../helpers/rows.js';
import { INTERNAL_ERROR, startErrorEndpoint, startSilentEndpoint, type FaultyEndpoint } from '../helpers/sqs-faults.js';

const BUCKET = 'prefix-orca-primary';
const HANDLE = 'AQEB-queue-limits';
const TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/** The handler builds its own SQS client, which takes its credentials from the environment. */
function stubCredentialsInEnvironment(): void {
  vi.stubEnv('AWS_ACCESS_KEY_ID', TEST_CREDENTIALS.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', TEST_CREDENTIALS.secretAccessKey);
}

/** An environment where the SDK's default credential chain finds nothing, and says so quickly. */
function removeCredentialsFromEnvironment(): void {
  for (const name of [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_PROFILE',
    'AWS_DEFAULT_PROFILE',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'AWS_ROLE_ARN',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  ]) {
    vi.stubEnv(name, undefined);
  }
  vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/orca-reconcile-test/config');
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '/nonexistent/orca-reconcile-test/credentials');
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
}

/** A Lambda context with `remainingMs` left from now. */
function lambdaContext(remainingMs: number) {
  const endsAt = Date.now() + remainingMs;
  return { endsAt, context: { awsRequestId: 'queue-limits', getRemainingTimeInMillis: () => endsAt - Date.now() } };
}

/** An SQSClient of the test's own pointed at `endpoint`. */
function clientFor(endpoint: string, config: { maxAttempts?: number; credentials?: false } = {}): SQSClient {
  return new SQSClient({
    endpoint,
    region: 'us-east-1',
    ...(config.credentials === false ? {} : { credentials: TEST_CREDENTIALS }),
    ...(config.maxAttempts === undefined ? {} : { maxAttempts: config.maxAttempts }),
  });
}

describe('limits of the SQS delete', () => {
  const { database: t, schema, sqs } = useOrcaSchema({
    prefix: 'orca_queue_limits',
    buckets: [BUCKET],
    sqs: true,
    emptyTablesBeforeEach: true,
  });

  /** Runs the handler with its own SQS client against `endpoint`, closes it, and returns what it threw. */
  async function invokeOwnHandler(
    endpoint: { endpoint: string; queueUrl: string },
    event: unknown,
    retry: HandlerOptions['retry'],
    extra: { context?: LambdaContextLike; timeoutMarginMs?: number } = {},
  ): Promise<unknown> {
    const handler = createHandler({
      database: t.db,
      sqsEndpoint: endpoint.endpoint,
      queueUrl: endpoint.queueUrl,
      env: { AWS_REGION: 'us-east-1' },
      schema,
      retry,
      timeoutMarginMs: extra.timeoutMarginMs,
    });
    try {
      return await handler(event, extra.context).catch((thrown: unknown) => thrown);
    } finally {
      await handler.close();
    }
  }
  const endpoints: FaultyEndpoint[] = [];
  const clients: SQSClient[] = [];

  const track = <T extends FaultyEndpoint>(endpoint: T): T => {
    endpoints.push(endpoint);
    return endpoint;
  };
  const own = (client: SQSClient): SQSClient => {
    clients.push(client);
    return client;
  };

  /** A staged job with one row of each report to find, and the handler's event for it. */
  const stagedJob = async () => {
    const jobId = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobId, BUCKET);
    return { jobId, event: { event: { jobId, orcaArchiveLocation: BUCKET, messageReceiptHandle: HANDLE } } };
  };

  /** The reports are committed and the job is `success`: what a failed delete must leave. */
  const expectCommittedSuccess = async (jobId: number) => {
    const reports = await readReports(t, schema, jobId);
    expect([reports.phantoms.length, reports.orphans.length, reports.mismatches.length]).toEqual([1, 1, 1]);
    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Success);
    expect(job.error_message).toBeNull();
  };

  afterEach(async () => {
    vi.unstubAllEnvs();
    for (const client of clients.splice(0)) client.destroy();
    await Promise.all(endpoints.splice(0).map((endpoint) => endpoint.close()));
  });

  describe('time', () => {
    it(
      'the handler settles by its deadline when the SQS endpoint accepts the connection and never answers: QueueError, reports committed, job success',
      async () => {
        // Prepare: a Lambda with 4 s left and a 1 s margin, so the run's deadline is 3 s away.
        stubCredentialsInEnvironment();
        const silent = track(await startSilentEndpoint());
        const { jobId, event } = await stagedJob();
        const { endsAt, context } = lambdaContext(4_000);

        // Act
        const error = await invokeOwnHandler(silent, event, noWait, { context, timeoutMarginMs: 1_000 });
        const settledAt = Date.now();

        // Assess: settled before Lambda would have stopped the process, with the delete cut off.
        expect(settledAt).toBeLessThan(endsAt);
        expect(error).toBeInstanceOf(QueueError);
        expect(error).toMatchObject({ code: 'QUEUE', queueUrl: silent.queueUrl });
        expect((error as QueueError).cause).toBeInstanceOf(TimeoutError);
        expect((error as Error).message).toMatch(
          new RegExp(`^deleting the message from ${silent.queueUrl.replaceAll('.', '\\.')} failed: delete SQS message timed out after \\d+\\.\\d s`),
        );
        expect(silent.requests()).toBe(1);
        await expectCommittedSuccess(jobId);
      },
      20_000,
    );

    it(
      'the SQS client the handler builds gives up on a request that gets no answer after its request timeout, even without a deadline',
      async () => {
        // Prepare: no context, so no deadline; no retries, so one request.
        stubCredentialsInEnvironment();
        const silent = track(await startSilentEndpoint());
        const { jobId, event } = await stagedJob();
        const startedAt = Date.now();

        // Act
        const error = await invokeOwnHandler(silent, event, { ...noWait, maxRetries: 0 });

        // Assess: the 5 s request timeout, not a hang.
        const elapsed = Date.now() - startedAt;
        expect(error).toBeInstanceOf(QueueError);
        expect((error as QueueError).cause).toMatchObject({ name: 'TimeoutError' });
        expect((error as Error).message).toContain('requestTimeout');
        expect(elapsed).toBeGreaterThanOrEqual(4_500);
        expect(elapsed).toBeLessThan(15_000);
        expect(silent.requests()).toBe(1);
        await expectCommittedSuccess(jobId);
      },
      30_000,
    );

    it('removeJobFromQueue aborts the request in flight at the deadline', async () => {
      // Prepare
      const silent = track(await startSilentEndpoint());
      const client = own(clientFor(silent.endpoint, { maxAttempts: 1 }));
      const deadline = Date.now() + 500;

      // Act
      const error = await removeJobFromQueue(client, { queueUrl: silent.queueUrl, receiptHandle: HANDLE }, { deadline, retry: noWait }).catch(
        (thrown: unknown) => thrown,
      );

      // Assess
      expect(Date.now()).toBeLessThan(deadline + 1_000);
      expect(error).toBeInstanceOf(QueueError);
      expect((error as QueueError).cause).toBeInstanceOf(TimeoutError);
      expect(silent.requests()).toBe(1);
    });

    it('removeJobFromQueue stops waiting at the deadline for a client that ignores the abort signal (client double: a send that never settles)', async () => {
      // Prepare: no real client can be made to ignore its abort signal.
      const signals: Array<AbortSignal | undefined> = [];
      const deaf: SqsSender = {
        send: (_command, options) => {
          signals.push(options?.abortSignal);
          return new Promise(() => undefined);
        },
      };
      const deadline = Date.now() + 300;

      // Act
      const error = await removeJobFromQueue(
        deaf,
        { queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/orca-queue', receiptHandle: HANDLE },
        { deadline },
      ).catch((thrown: unknown) => thrown);

      // Assess
      expect(Date.now()).toBeLessThan(deadline + 1_000);
      expect(error).toBeInstanceOf(QueueError);
      expect((error as QueueError).cause).toBeInstanceOf(TimeoutError);
      expect(signals).toHaveLength(1);
      expect(signals[0]?.aborted).toBe(true);
    });

    it('removeJobFromQueue sends nothing when the deadline has already passed', async () => {
      // Prepare
      const silent = track(await startSilentEndpoint());
      const client = own(clientFor(silent.endpoint, { maxAttempts: 1 }));

      // Act
      const error = await removeJobFromQueue(
        client,
        { queueUrl: silent.queueUrl, receiptHandle: HANDLE },
        { deadline: Date.now() - 1_000 },
      ).catch((thrown: unknown) => thrown);

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect((error as Error).message).toMatch(/its deadline had passed 1\.\d s before it started$/);
      expect(silent.requests()).toBe(0);
    });

    it('removeJobFromQueue starts no retry whose backoff would end past the deadline', async () => {
      // Prepare: every request fails at once; the backoff clock moves only when the library sleeps.
      const failing = track(await startErrorEndpoint(INTERNAL_ERROR));
      const client = own(clientFor(failing.endpoint, { maxAttempts: 1 }));
      const waits: number[] = [];
      let slept = 0;
      const retry = {
        random: () => 0,
        now: () => Date.now() + slept,
        sleep: async (ms: number) => {
          waits.push(ms);
          slept += ms;
        },
      };

      // Act: 3.5 s of budget: waits of 1 s and 2 s fit, the third (4 s) would not.
      const error = await removeJobFromQueue(
        client,
        { queueUrl: failing.queueUrl, receiptHandle: HANDLE },
        { deadline: Date.now() + 3_500, retry },
      ).catch((thrown: unknown) => thrown);

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect(error).toMatchObject({ cause: { name: 'InternalError' } });
      expect(waits).toEqual([1_000, 2_000]);
      expect(failing.requests()).toBe(3);
    });
  });

  describe('one layer of retries', () => {
    it('the handler makes at most 1 + 3 requests for one delete against an endpoint that always answers 500', async () => {
      // Prepare
      stubCredentialsInEnvironment();
      const failing = track(await startErrorEndpoint(INTERNAL_ERROR));
      const { jobId, event } = await stagedJob();
      const { waits, retry } = recordedBackoff();

      // Act
      const error = await invokeOwnHandler(failing, event, retry);

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect(error).toMatchObject({ cause: { name: 'InternalError' } });
      expect(failing.requests()).toBe(4);
      expect(waits).toEqual([1_000, 2_000, 4_000]);
      await expectCommittedSuccess(jobId);
    });

    it('removeJobFromQueue with an injected client of maxAttempts 1 makes 1 + 3 requests', async () => {
      // Prepare
      const failing = track(await startErrorEndpoint(INTERNAL_ERROR));
      const client = own(clientFor(failing.endpoint, { maxAttempts: 1 }));

      // Act
      const error = await removeJobFromQueue(client, { queueUrl: failing.queueUrl, receiptHandle: HANDLE }, { retry: noWait }).catch(
        (thrown: unknown) => thrown,
      );

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect(failing.requests()).toBe(4);
    });

    it('an injected client with the SDK default of 3 attempts multiplies them with the retries, as documented', async () => {
      // Prepare
      const failing = track(await startErrorEndpoint(INTERNAL_ERROR));
      const client = own(clientFor(failing.endpoint));

      // Act
      const error = await removeJobFromQueue(client, { queueUrl: failing.queueUrl, receiptHandle: HANDLE }, { retry: noWait }).catch(
        (thrown: unknown) => thrown,
      );

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect(failing.requests()).toBe(3 * 4);
    });
  });

  describe('permanent failures are not retried', () => {
    const cases = [
      {
        label: 'an invalid receipt handle (ReceiptHandleIsInvalid)',
        error: {
          status: 404,
          type: 'com.amazonaws.sqs#ReceiptHandleIsInvalid',
          queryCode: 'ReceiptHandleIsInvalid',
          message: `The input receipt handle "${HANDLE}" is not a valid receipt handle.`,
        },
        name: 'ReceiptHandleIsInvalid',
        reason: 'the receipt handle is not one this queue issued',
      },
      {
        label: 'access denied (AccessDenied)',
        error: {
          status: 403,
          type: 'com.amazon.coral.service#AccessDeniedException',
          queryCode: 'AccessDenied',
          message: 'User: arn:aws:sts::123456789012:assumed-role/orca/reconcile is not authorized to perform: sqs:deletemessage',
        },
        name: 'AccessDenied',
        reason: 'the credentials are not allowed sqs:DeleteMessage on this queue',
      },
      {
        label: 'a queue that does not exist, with only its query-protocol type (AWS.SimpleQueueService.NonExistentQueue)',
        error: {
          status: 400,
          type: 'AWS.SimpleQueueService.NonExistentQueue',
          message: 'The specified queue does not exist for this wsdl version.',
        },
        name: 'QueueDoesNotExist',
        reason: 'the queue does not exist',
      },
    ];

    it.each(cases)('$label, answered by a local endpoint in the SQS wire format: one request, a permanent QueueError', async ({ error: answer, name, reason }) => {
      // Prepare
      const refusing = track(await startErrorEndpoint(answer));
      const client = own(clientFor(refusing.endpoint, { maxAttempts: 1 }));
      const { waits, retry } = recordedBackoff();

      // Act
      const error = await removeJobFromQueue(client, { queueUrl: refusing.queueUrl, receiptHandle: HANDLE }, { retry }).catch(
        (thrown: unknown) => thrown,
      );

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect(error).toMatchObject({ code: 'QUEUE', queueUrl: refusing.queueUrl, cause: { name } });
      expect((error as Error).message).toContain(`deleting the message from ${refusing.queueUrl} failed permanently, so it was not retried: ${reason}`);
      expect((error as Error).message).toContain(answer.message);
      expect((error as Error).stack).toContain('failed permanently');
      expect(refusing.requests()).toBe(1);
      expect(waits).toEqual([]);
    });

    it('a queue that does not exist on fauxqs: one send, a permanent QueueError naming the queue URL', async () => {
      // Prepare
      const queue = await sqs.createQueue();
      const message = await queue.sendAndReceiveJob({ jobId: 1, orcaArchiveLocation: BUCKET });
      const missingQueueUrl = queue.url.replace(queue.name, 'orca-no-such-queue');
      const sends: string[] = [];
      const client: SqsSender = { send: (command, options) => (sends.push('send'), sqs.sqs.send(command, options)) };
      const { waits, retry } = recordedBackoff();

      // Act
      const error = await removeJobFromQueue(client, { queueUrl: missingQueueUrl, receiptHandle: message.receiptHandle }, { retry }).catch(
        (thrown: unknown) => thrown,
      );

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect(error).toMatchObject({ queueUrl: missingQueueUrl, cause: { name: 'QueueDoesNotExist', Code: 'AWS.SimpleQueueService.NonExistentQueue' } });
      expect((error as Error).message).toBe(
        `deleting the message from ${missingQueueUrl} failed permanently, so it was not retried: the queue does not exist: check the queue URL (The specified queue does not exist.)`,
      );
      expect(sends).toEqual(['send']);
      expect(waits).toEqual([]);
      expect(await queue.messagesLeft()).toBe(1);
    });

    it('an error named AWS.SimpleQueueService.NonExistentQueue, as older SDK versions name it (client double: injected fault)', async () => {
      // Prepare: the SDK installed here names this error QueueDoesNotExist.
      const legacy = Object.assign(new Error('The specified queue does not exist for this wsdl version.'), {
        name: 'AWS.SimpleQueueService.NonExistentQueue',
      });
      let sends = 0;
      const client: SqsSender = {
        send: async () => {
          sends += 1;
          throw legacy;
        },
      };
      const { waits, retry } = recordedBackoff();

      // Act
      const error = await removeJobFromQueue(
        client,
        { queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/orca-queue', receiptHandle: HANDLE },
        { retry },
      ).catch((thrown: unknown) => thrown);

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect((error as QueueError).cause).toBe(legacy);
      expect((error as Error).message).toContain('failed permanently, so it was not retried: the queue does not exist');
      expect(sends).toBe(1);
      expect(waits).toEqual([]);
    });

    it('a client without credentials: no request, a permanent QueueError', async () => {
      // Prepare
      removeCredentialsFromEnvironment();
      const endpoint = track(await startErrorEndpoint(INTERNAL_ERROR));
      const client = own(clientFor(endpoint.endpoint, { maxAttempts: 1, credentials: false }));
      const { waits, retry } = recordedBackoff();

      // Act
      const error = await removeJobFromQueue(client, { queueUrl: endpoint.queueUrl, receiptHandle: HANDLE }, { retry }).catch(
        (thrown: unknown) => thrown,
      );

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect(error).toMatchObject({ cause: { name: 'CredentialsProviderError' } });
      expect((error as Error).message).toContain('failed permanently, so it was not retried: no AWS credentials could be loaded');
      expect(endpoint.requests()).toBe(0);
      expect(waits).toEqual([]);
    });

    it('the handler reports a permanent failure at once, with the reports committed and the job success', async () => {
      // Prepare: the handler's own client, on an environment without credentials.
      removeCredentialsFromEnvironment();
      const endpoint = track(await startErrorEndpoint(INTERNAL_ERROR));
      const { jobId, event } = await stagedJob();
      const { waits, retry } = recordedBackoff();

      // Act
      const error = await invokeOwnHandler(endpoint, event, retry);

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect((error as Error).message).toContain('no AWS credentials could be loaded');
      expect(waits).toEqual([]);
      expect(endpoint.requests()).toBe(0);
      await expectCommittedSuccess(jobId);
    });

    it('a 500 is still retried: 1 + 3 requests with the backoff', async () => {
      // Prepare
      const failing = track(await startErrorEndpoint(INTERNAL_ERROR));
      const client = own(clientFor(failing.endpoint, { maxAttempts: 1 }));
      const { waits, retry } = recordedBackoff();

      // Act
      const error = await removeJobFromQueue(client, { queueUrl: failing.queueUrl, receiptHandle: HANDLE }, { retry }).catch(
        (thrown: unknown) => thrown,
      );

      // Assess
      expect(error).toBeInstanceOf(QueueError);
      expect((error as Error).message).not.toContain('permanently');
      expect(failing.requests()).toBe(4);
      expect(waits).toEqual([1_000, 2_000, 4_000]);
    });
  });
});
