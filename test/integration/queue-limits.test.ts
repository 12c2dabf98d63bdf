import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  OrcaStatus,
  QueueError,
  createHandler,
  removeJobFromQueue,
} from '../../src/index.js';
import { openTestDatabase, uniqueSchemaName, type TestDatabase } from '../helpers/database.js';
import { insertJob, readJob, readReports } from '../helpers/factories.js';
import { createOrcaSchema } from '../helpers/orca-schema.js';
import { noWait, recordedBackoff } from '../helpers/retry.js';
import { seedOneOfEachReport, truncateReconcileTables } from '../helpers/scenarios.js';
import { INTERNAL_ERROR, startErrorEndpoint, type FaultyEndpoint } from '../helpers/sqs-faults.js';
import { startTestSqs, type TestSqs } from '../helpers/sqs.js';

const BUCKET = 'prefix-orca-primary';
const HANDLE = 'AQEB-queue-limits';
const TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/** The handler builds its own SQS client, which takes its credentials from the environment. */
function stubCredentialsInEnvironment(): void {
  vi.stubEnv('AWS_ACCESS_KEY_ID', TEST_CREDENTIALS.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', TEST_CREDENTIALS.secretAccessKey);
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
  let t: TestDatabase;
  let dropSchema: () => Promise<void>;
  let sqs: TestSqs;
  const endpoints: FaultyEndpoint[] = [];
  const clients: SQSClient[] = [];
  const schema = uniqueSchemaName('orca_queue_limits');

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

  beforeAll(async () => {
    t = await openTestDatabase();
    dropSchema = await createOrcaSchema(t, schema, [BUCKET]);
    sqs = await startTestSqs();
  });
  afterAll(async () => {
    await sqs?.close();
    await dropSchema?.();
    await t?.close();
  });
  beforeEach(async () => {
    await truncateReconcileTables(t, schema);
  });
  afterEach(async () => {
    vi.unstubAllEnvs();
    for (const client of clients.splice(0)) client.destroy();
    await Promise.all(endpoints.splice(0).map((endpoint) => endpoint.close()));
  });

  describe('one layer of retries', () => {
    it('the handler makes at most 1 + 3 requests for one delete against an endpoint that always answers 500', async () => {
      // Prepare
      stubCredentialsInEnvironment();
      const failing = track(await startErrorEndpoint(INTERNAL_ERROR));
      const { jobId, event } = await stagedJob();
      const { waits, retry } = recordedBackoff();
      const handler = createHandler({
        database: t.db,
        sqsEndpoint: failing.endpoint,
        queueUrl: failing.queueUrl,
        env: { AWS_REGION: 'us-east-1' },
        schema,
        retry,
      });

      // Act
      let error: unknown;
      try {
        error = await handler(event).catch((thrown: unknown) => thrown);
      } finally {
        await handler.close();
      }

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

});
