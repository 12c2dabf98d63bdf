import { beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DatabaseError,
  InvalidInputError,
  OrcaStatus,
  createHandler,
  type DbConnectInfo,
  type HandlerOptions,
} from '../../src/index.js';
import { databaseUrlConnectInfo, useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { addPoisonedKeyConstraint, closedLoopbackPort, noWait, POISONED_KEY } from '../helpers/faults.js';
import { captureLogger, recordCalls } from '../helpers/recording.js';
import { insertInventory, readJob, snapshotJobs, stageJob } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
// Set on every connection info below; the test server's trust auth never asks for it.
const PASSWORD = 'not-a-real-Passw0rd-4711';

describe('createHandler', () => {
  const { database: t, schema, sqs } = useOrcaSchema({ buckets: [BUCKET], sqs: true, emptyTablesBeforeEach: true });

  beforeAll(async () => {
    await addPoisonedKeyConstraint(t, schema);
  });

  it('runs a job end to end: returns the counts, marks the job success and deletes the message', async () => {
    // Prepare
    const queue = await sqs.createQueue({ fifo: true });
    const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
    const handler = createHandler({
      database: t.db,
      sqs: sqs.sqs,
      env: { INTERNAL_REPORT_QUEUE_URL: queue.url },
      schema,
      retry: noWait,
    });

    // Act
    const output = await handler(event, { awsRequestId: 'request-1', getRemainingTimeInMillis: () => 720_000 });
    await handler.close();

    // Assess
    expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Success);
    expect(job.end_time).toBeInstanceOf(Date);
    expect(job.error_message).toBeNull();
    expect(await queue.messagesLeft()).toBe(0);
    // close() leaves alone what it was given.
    await expect(t.query('SELECT 1 AS one')).resolves.toEqual([{ one: 1 }]);
  });

  it('marks the job error and keeps the message when report generation fails', async () => {
    // Prepare
    const queue = await sqs.createQueue();
    const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
    await insertInventory(t, schema, { jobId, bucket: BUCKET, keyPath: POISONED_KEY });
    const handler = createHandler({ database: t.db, sqs: sqs.sqs, queueUrl: queue.url, env: {}, schema, retry: noWait });

    // Act
    const error = await handler(event).catch((thrown: unknown) => thrown);

    // Assess
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as Error).message).toContain('orphan_key_is_not_poison');
    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Error);
    expect(job.error_message).toBe((error as Error).message);
    expect(job.end_time).toBeInstanceOf(Date);
    expect(await queue.messagesLeft()).toBe(1);
  });

  describe('rejects a malformed event before any database or queue call', () => {
    const valid = { jobId: 1, orcaArchiveLocation: BUCKET, messageReceiptHandle: 'handle' };
    const badEvents: Array<[string, unknown, string]> = [
      ['jobId 0', { event: { ...valid, jobId: 0 } }, 'event.jobId'],
      ['jobId -1', { event: { ...valid, jobId: -1 } }, 'event.jobId'],
      ['jobId 1.5', { event: { ...valid, jobId: 1.5 } }, 'event.jobId'],
      ['jobId "1"', { event: { ...valid, jobId: '1' } }, 'event.jobId'],
      ['a missing jobId', { event: { ...valid, jobId: undefined } }, 'event.jobId'],
      ['a missing orcaArchiveLocation', { event: { ...valid, orcaArchiveLocation: undefined } }, 'event.orcaArchiveLocation'],
      ['an orcaArchiveLocation that is no bucket name', { event: { ...valid, orcaArchiveLocation: 'A B' } }, 'event.orcaArchiveLocation'],
      ['an empty messageReceiptHandle', { event: { ...valid, messageReceiptHandle: '' } }, 'event.messageReceiptHandle'],
      ['a missing messageReceiptHandle', { event: { ...valid, messageReceiptHandle: undefined } }, 'event.messageReceiptHandle'],
      ['fields without the event wrapper', { ...valid }, 'event'],
      ['an empty object', {}, 'event'],
      ['a null event property', { event: null }, 'event'],
      ['an array event property', { event: [valid] }, 'event'],
      ['null', null, 'event'],
      ['an array', [{ event: valid }], 'event'],
      ['a string', JSON.stringify({ event: valid }), 'event'],
    ];

    it.each(badEvents)('%s', async (_label, event, field) => {
      // Prepare
      const queue = await sqs.createQueue();
      const staged = await stageJob(t, schema, BUCKET, queue);
      const database = recordCalls(t.db);
      const client = recordCalls(sqs.sqs);
      let databaseFactoryCalls = 0;
      const handler = createHandler({
        database: () => {
          databaseFactoryCalls += 1;
          return database.spy;
        },
        sqs: client.spy,
        queueUrl: queue.url,
        env: {},
        schema,
        retry: noWait,
      });
      const before = await snapshotJobs(t, schema);

      // Act
      const failure = handler(event);

      // Assess
      await expect(failure).rejects.toBeInstanceOf(InvalidInputError);
      await expect(failure).rejects.toMatchObject({ code: 'INVALID_INPUT', field });
      expect(databaseFactoryCalls).toBe(0);
      expect(database.calls).toEqual([]);
      expect(client.calls).toEqual([]);
      expect(await snapshotJobs(t, schema)).toEqual(before);
      expect((await readJob(t, schema, staged.jobId)).status_id).toBe(OrcaStatus.Staged);
      expect(await queue.messagesLeft()).toBe(1);
    });
  });

  describe('names a missing configuration variable before any database or queue call', () => {
    const cases: Array<[string, (spies: { database: HandlerOptions['database']; sqs: HandlerOptions['sqs'] }) => HandlerOptions, string]> = [
      [
        'no INTERNAL_REPORT_QUEUE_URL and no injected queue URL',
        ({ database, sqs: client }) => ({ database, sqs: client, env: {} }),
        'INTERNAL_REPORT_QUEUE_URL',
      ],
      [
        'a blank INTERNAL_REPORT_QUEUE_URL',
        ({ database, sqs: client }) => ({ database, sqs: client, env: { INTERNAL_REPORT_QUEUE_URL: '  ' } }),
        'INTERNAL_REPORT_QUEUE_URL',
      ],
      [
        'no injected database and no DB_CONNECT_INFO_SECRET_ARN',
        ({ sqs: client }) => ({ sqs: client, queueUrl: 'http://127.0.0.1:9/q', env: { AWS_REGION: 'us-east-1' } }),
        'DB_CONNECT_INFO_SECRET_ARN',
      ],
      [
        'a secret to read but no AWS_REGION',
        ({ sqs: client }) => ({
          sqs: client,
          queueUrl: 'http://127.0.0.1:9/q',
          env: { DB_CONNECT_INFO_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:orca-db' },
        }),
        'AWS_REGION',
      ],
      [
        'an SQS client to build but no AWS_REGION',
        ({ database }) => ({ database, queueUrl: 'http://127.0.0.1:9/q', env: {} }),
        'AWS_REGION',
      ],
    ];

    it.each(cases)('%s', async (_label, options, variable) => {
      // Prepare
      const database = recordCalls(t.db);
      const client = recordCalls(sqs.sqs);
      const handler = createHandler({ ...options({ database: database.spy, sqs: client.spy }), schema, retry: noWait });
      const event = { event: { jobId: 1, orcaArchiveLocation: BUCKET, messageReceiptHandle: 'handle' } };

      // Act
      const failure = handler(event);

      // Assess
      await expect(failure).rejects.toBeInstanceOf(ConfigurationError);
      await expect(failure).rejects.toMatchObject({ code: 'CONFIGURATION', variable });
      await expect(failure).rejects.toThrow(variable);
      expect(database.calls).toEqual([]);
      expect(client.calls).toEqual([]);
      await handler.close();
    });
  });

  it('names a missing connection-info key without printing the password', async () => {
    // Prepare
    const { logger, lines } = captureLogger();
    const queue = await sqs.createQueue();
    const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
    const handler = createHandler({
      getDbConnectInfo: async () =>
        ({ host: '127.0.0.1', port: 5432, user_username: 'postgres', user_password: PASSWORD }) as unknown as DbConnectInfo,
      sqs: sqs.sqs,
      queueUrl: queue.url,
      env: {},
      schema,
      logger,
      retry: noWait,
    });

    // Act
    const error = await handler(event).catch((thrown: unknown) => thrown);
    await handler.close();

    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toMatchObject({ variable: 'user_database' });
    expect(JSON.stringify({ message: (error as Error).message, lines })).not.toContain(PASSWORD);
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Staged);
    expect(await queue.messagesLeft()).toBe(1);
  });

  it('keeps the password out of errors and log lines when the database cannot be reached', async () => {
    // Prepare: a loopback port nothing listens on.
    const closedPort = await closedLoopbackPort();
    const { logger, lines } = captureLogger();
    const queue = await sqs.createQueue();
    const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
    const handler = createHandler({
      getDbConnectInfo: async () => ({
        host: '127.0.0.1',
        port: closedPort,
        user_database: 'test',
        user_username: 'postgres',
        user_password: PASSWORD,
      }),
      sqs: sqs.sqs,
      queueUrl: queue.url,
      env: {},
      schema,
      logger,
      retry: noWait,
    });

    // Act
    const error = await handler(event).catch((thrown: unknown) => thrown);
    await handler.close();

    // Assess
    expect(error).toBeInstanceOf(DatabaseError);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some((line) => line.includes('ECONNREFUSED'))).toBe(true);
    const everything = JSON.stringify({ message: (error as Error).message, cause: String((error as Error).cause), lines });
    expect(everything).not.toContain(PASSWORD);
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Staged);
    expect(await queue.messagesLeft()).toBe(1);
  });

  it.runIf(usingPostgres)(
    'builds one pool from getDbConnectInfo, reuses it across invocations and ends it on close()',
    async () => {
      // Prepare
      const applicationName = `orca-reconcile-handler-test-${process.pid}`;
      let connectInfoCalls = 0;
      const { logger, lines } = captureLogger();
      const queue = await sqs.createQueue({ fifo: true });
      const first = await stageJob(t, schema, BUCKET, queue);
      const handler = createHandler({
        getDbConnectInfo: async () => {
          connectInfoCalls += 1;
          return databaseUrlConnectInfo(PASSWORD);
        },
        poolConfig: { application_name: applicationName },
        sqs: sqs.sqs,
        env: { INTERNAL_REPORT_QUEUE_URL: queue.url },
        schema,
        logger,
        retry: noWait,
      });
      const connectionsOfHandler = async (): Promise<number> => {
        const [row] = await t.query<{ n: string }>(
          'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1',
          [applicationName],
        );
        return Number(row!.n);
      };

      // Act: two invocations of one warm container, a day apart. The loader replaces the
      // bucket's listing before it stages the next job; the catalog is replaced here too, so
      // that each job finds one row of each report.
      const firstOutput = await handler(first.event);
      await t.exec(`TRUNCATE "${schema}".files, "${schema}".granules, "${schema}".reconcile_s3_object`);
      const second = await stageJob(t, schema, BUCKET, queue);
      const secondOutput = await handler(second.event);
      const openWhileWarm = await connectionsOfHandler();
      await handler.close();

      // Assess
      expect(firstOutput).toEqual({ jobId: first.jobId, phantoms: 1, orphans: 1, mismatches: 1 });
      expect(secondOutput).toEqual({ jobId: second.jobId, phantoms: 1, orphans: 1, mismatches: 1 });
      expect(connectInfoCalls).toBe(1);
      expect(openWhileWarm).toBeGreaterThanOrEqual(1);
      expect(openWhileWarm).toBeLessThanOrEqual(2);
      for (const jobId of [first.jobId, second.jobId]) {
        expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Success);
      }
      expect(await queue.messagesLeft()).toBe(0);
      // The server drops a backend a moment after its client says goodbye.
      const deadline = Date.now() + 5_000;
      while ((await connectionsOfHandler()) > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await connectionsOfHandler()).toBe(0);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).not.toContain(PASSWORD);
    },
  );
});
