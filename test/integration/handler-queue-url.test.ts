import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigurationError,
  InvalidInputError,
  OrcaStatus,
  createHandler,
  task,
  type HandlerOptions,
} from '../../src/index.js';
import { useOrcaSchema } from '../helpers/database.js';
import { noWait } from '../helpers/faults.js';
import { recordCalls } from '../helpers/recording.js';
import { readJob, snapshotReconcileTables, stageJob } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';

describe('the queue URL is checked before any database call', () => {
  const { database: t, schema, sqs } = useOrcaSchema({
    prefix: 'orca_queue_url',
    buckets: [BUCKET],
    sqs: true,
    emptyTablesBeforeEach: true,
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  /** Runs the handler on a staged job and checks that nothing at all happened. */
  const expectRefusedUpFront = async (
    options: (queue: { url: string }) => Omit<HandlerOptions, 'database' | 'schema' | 'retry'>,
    expected: { message: RegExp | string },
  ) => {
    const queue = await sqs.createQueue({ fifo: true });
    const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
    const database = recordCalls(t.db);
    let databaseFactoryCalls = 0;
    const handler = createHandler({
      ...options(queue),
      database: () => {
        databaseFactoryCalls += 1;
        return database.spy;
      },
      schema,
      retry: noWait,
    });
    const before = await snapshotReconcileTables(t, schema);

    const error = await handler(event).catch((thrown: unknown) => thrown);
    await handler.close();

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'queueUrl' });
    expect((error as Error).message).toMatch(expected.message);
    expect(databaseFactoryCalls).toBe(0);
    expect(database.calls).toEqual([]);
    expect(await snapshotReconcileTables(t, schema)).toEqual(before);
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Staged);
    expect(await queue.messagesLeft()).toBe(1);
  };

  describe('INTERNAL_REPORT_QUEUE_URL that is no SQS queue URL', () => {
    it.each([
      ['the queue name', 'prefix-orca-internal-report-queue.fifo', 'it is not a URL'],
      ['the queue ARN', 'arn:aws:sqs:us-west-2:123456789012:prefix-orca-internal-report-queue.fifo', 'must start with https://'],
      ['a URL without the account id', 'https://sqs.us-west-2.amazonaws.com/prefix-orca-internal-report-queue.fifo', 'its path must be'],
      ['a URL on a mistyped host', 'https://sqs.us-west-2.amazonaws.co/123456789012/prefix-orca-internal-report-queue.fifo', 'is neither an SQS host'],
    ])('%s', async (_label, url, reason) => {
      await expectRefusedUpFront(
        () => ({ sqs: sqs.sqs, env: { INTERNAL_REPORT_QUEUE_URL: url } }),
        { message: new RegExp(`${reason.replaceAll('.', '\\.')}.*\\(read from INTERNAL_REPORT_QUEUE_URL\\)$`) },
      );
    });
  });

  it('a loopback URL for the client the handler builds for AWS', async () => {
    await expectRefusedUpFront(
      () => ({ queueUrl: 'http://127.0.0.1:9/000000000000/orca-internal-report-queue', env: { AWS_REGION: 'us-east-1' } }),
      { message: /its host "127\.0\.0\.1" is not an SQS host \(configure the SQS endpoint to use another one\)/ },
    );
  });

  it('a URL on another host than the configured sqsEndpoint', async () => {
    await expectRefusedUpFront(
      () => ({ queueUrl: 'http://10.1.2.3:4566/000000000000/orca-queue', sqsEndpoint: 'http://127.0.0.1:4566', env: { AWS_REGION: 'us-east-1' } }),
      { message: /its host "10\.1\.2\.3" is neither an SQS host nor the SQS endpoint's host "127\.0\.0\.1"/ },
    );
  });

  it('a URL on another host than the endpoint of the injected SQSClient', async () => {
    await expectRefusedUpFront(
      (queue) => ({ sqs: sqs.sqs, queueUrl: queue.url.replace(/^http:\/\/[^/]+/, 'http://10.1.2.3:4566'), env: {} }),
      { message: /or one on the SQS endpoint http:\/\/127\.0\.0\.1:\d+: its host "10\.1\.2\.3"/ },
    );
  });

  it('task refuses a bad queueUrl before any database call', async () => {
    // Prepare
    const queue = await sqs.createQueue();
    const { jobId, input } = await stageJob(t, schema, BUCKET, queue);
    const database = recordCalls(t.db);

    // Act
    const failure = task({ ...input, queueUrl: queue.url.replace('/000000000000/', '/') }, { database: database.spy, sqs: sqs.sqs, schema });

    // Assess
    await expect(failure).rejects.toMatchObject({ code: 'INVALID_INPUT', field: 'queueUrl' });
    expect(database.calls).toEqual([]);
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Staged);
  });

  describe('the configured SQS endpoint', () => {
    it('sqsEndpoint is where the client the handler builds sends: the job runs and its message is deleted', async () => {
      // Prepare
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
      const queue = await sqs.createQueue({ fifo: true });
      const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
      const handler = createHandler({
        database: t.db,
        sqsEndpoint: sqs.endpoint,
        queueUrl: queue.url,
        env: { AWS_REGION: 'us-east-1' },
        schema,
        retry: noWait,
      });

      // Act
      const output = await handler(event);
      await handler.close();

      // Assess
      expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
      expect(await queue.messagesLeft()).toBe(0);
    });

    it('AWS_ENDPOINT_URL_SQS is the default of sqsEndpoint, as it is for the SDK', async () => {
      // Prepare
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
      const queue = await sqs.createQueue();
      const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
      const handler = createHandler({
        database: t.db,
        env: {
          AWS_REGION: 'us-east-1',
          AWS_ENDPOINT_URL_SQS: sqs.endpoint,
          INTERNAL_REPORT_QUEUE_URL: queue.url,
        },
        schema,
        retry: noWait,
      });

      // Act
      const output = await handler(event);
      await handler.close();

      // Assess
      expect(output).toMatchObject({ jobId });
      expect(await queue.messagesLeft()).toBe(0);
    });

    it.each(['127.0.0.1:4566', 'ftp://127.0.0.1/', ''])('refuses sqsEndpoint %j when the handler is created', (endpoint) => {
      expect(() => createHandler({ sqsEndpoint: endpoint })).toThrow(
        expect.objectContaining({ code: 'INVALID_INPUT', field: 'sqsEndpoint' }),
      );
    });

    it('names a malformed AWS_ENDPOINT_URL_SQS as a configuration error, before any database call', async () => {
      // Prepare
      const queue = await sqs.createQueue();
      const { event } = await stageJob(t, schema, BUCKET, queue);
      const database = recordCalls(t.db);
      const handler = createHandler({
        database: database.spy,
        env: { AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_SQS: 'localhost:4566', INTERNAL_REPORT_QUEUE_URL: queue.url },
        schema,
      });

      // Act
      const failure = handler(event);

      // Assess
      await expect(failure).rejects.toBeInstanceOf(ConfigurationError);
      await expect(failure).rejects.toMatchObject({ variable: 'AWS_ENDPOINT_URL_SQS' });
      expect(database.calls).toEqual([]);
    });
  });
});
