import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import {
  ConfigurationError,
  DatabaseError,
  OrcaStatus,
  createHandler,
  type DbConnectInfo,
  type SqsSender,
} from '../../src/index.js';
import { databaseUrlConnectInfo, useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { closedLoopbackPort, recordedBackoff } from '../helpers/faults.js';
import { captureLogger, type LogCall, ownPropertyJson, recordCalls, secretPaths, whereSecretShows } from '../helpers/recording.js';
import { insertJob, readJob, seedOneOfEachReport } from '../helpers/rows.js';

// Random per run, so a match can only come from this run's connection info.
const PASSWORD = `S3cret-Pa55word-${randomBytes(12).toString('hex')}`;
const ADMIN_PASSWORD = `Adm1n-Pa55word-${randomBytes(12).toString('hex')}`;
const BUCKET = 'prefix-orca-primary';
const QUEUE_URL = 'http://127.0.0.1:9/000000000000/orca-internal-report-queue';
const event = { event: { jobId: 1, orcaArchiveLocation: BUCKET, messageReceiptHandle: 'AQEB-secrets' } };

/** An SQS client that must never be used: every call is recorded, and fails. */
const unusedSqs = (): { spy: SqsSender; calls: string[] } =>
  recordCalls<SqsSender>({
    send: async () => {
      throw new Error('test fixture: no SQS call expected');
    },
  });

const omit = (info: Record<string, unknown>, key: string): Record<string, unknown> =>
  Object.fromEntries(Object.entries(info).filter(([name]) => name !== key));

/** Every place a secret shows in the captured log lines, as "line n: where". */
const secretInLines = (lines: LogCall[], secret: string): string[] =>
  lines.flatMap((line, index) => whereSecretShows(line, secret).map((where) => `line ${index} (${line.message}): ${where}`));

describe('secrets', () => {
  let poolEnd: MockInstance<pg.Pool['end']>;

  beforeEach(() => {
    // Observes the pools the handler builds, and lets each one really end.
    poolEnd = vi.spyOn(pg.Pool.prototype, 'end');
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** The pools ended so far, as `this` of each end() call. */
  const endedPools = (): pg.Pool[] => poolEnd.mock.contexts as pg.Pool[];

  it('the leak scan finds a password hidden anywhere in an error', () => {
    // Prepare: a password in a non-enumerable property of the cause of the cause, in a symbol
    // property, in a buffer and in an AggregateError member.
    const deepest = new Error('socket closed');
    Object.defineProperty(deepest, 'connectionParameters', { value: { password: PASSWORD }, enumerable: false });
    const middle = new Error('connect failed', { cause: deepest });
    const outer = new Error('start job failed', { cause: middle });
    const withSymbol = Object.assign(new Error('x'), { [Symbol('secret')]: `pw=${PASSWORD}` });
    const withBuffer = Object.assign(new Error('x'), { packet: Buffer.from(`\u0000password\u0000${PASSWORD}`) });
    const aggregate = new AggregateError([new Error(`FATAL: password ${PASSWORD} rejected`)], 'all attempts failed');

    // Act / Assess
    expect(secretPaths(outer, PASSWORD)).toEqual(['$.cause.cause.connectionParameters.password']);
    expect(whereSecretShows(outer, PASSWORD)).toEqual(
      expect.arrayContaining(['rendering inspect', 'rendering ownPropertyJson']),
    );
    expect(JSON.stringify(outer)).not.toContain(PASSWORD);
    expect(ownPropertyJson(outer)).toContain(PASSWORD);
    expect(whereSecretShows(withSymbol, PASSWORD)).not.toEqual([]);
    expect(secretPaths(withBuffer, PASSWORD)).toEqual(['$.packet']);
    expect(secretPaths(aggregate, PASSWORD).sort()).toEqual(['$.errors.0.message', '$.errors.0.stack']);
    expect(whereSecretShows(new Error('nothing here'), PASSWORD)).toEqual([]);
  });

  it('keeps the password out of log lines and out of every part of the error when the database is unreachable', async () => {
    // Prepare
    const port = await closedLoopbackPort();
    const { logger, calls: lines } = captureLogger();
    const { waits, retry } = recordedBackoff();
    const sqs = unusedSqs();
    const handler = createHandler({
      getDbConnectInfo: async () => ({
        host: '127.0.0.1',
        port,
        user_database: 'test',
        user_username: 'postgres',
        user_password: PASSWORD,
      }),
      sqs: sqs.spy,
      queueUrl: QUEUE_URL,
      env: {},
      logger,
      retry,
    });

    // Act
    const error = await handler(event).catch((thrown: unknown) => thrown);
    await handler.close();

    // Assess: the run failed the way an unreachable database fails, after its retries.
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'DATABASE', operation: 'start job' });
    expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
    expect(waits.slice(0, 3)).toEqual([1000, 2000, 4000]);
    expect(sqs.calls).toEqual([]);
    // The password did reach the pool: what follows could have leaked it.
    expect(endedPools()).toHaveLength(1);
    expect(endedPools()[0]!.options.password).toBe(PASSWORD);
    // No rendering of the error, its properties or its causes holds it.
    expect(whereSecretShows(error, PASSWORD)).toEqual([]);
    const causes: unknown[] = [];
    for (let current: unknown = error; current instanceof Error; current = current.cause) causes.push(current);
    expect(causes.length).toBeGreaterThanOrEqual(2);
    for (const cause of causes) expect(whereSecretShows(cause, PASSWORD)).toEqual([]);
    // Nor any log line, debug included.
    expect(lines.map((line) => line.level)).toEqual(expect.arrayContaining(['debug', 'warn', 'error']));
    expect(secretInLines(lines, PASSWORD)).toEqual([]);
    // close() ended the pool it built, and left no client behind.
    expect(endedPools()[0]!.ended).toBe(true);
    expect(endedPools()[0]!.totalCount).toBe(0);
  });

  describe('names the bad key of a connection info without printing a password', () => {
    const complete = (port: number): Record<string, unknown> => ({
      host: '127.0.0.1',
      port,
      user_database: 'test',
      user_username: 'postgres',
      user_password: PASSWORD,
      admin_database: 'postgres',
      admin_username: 'postgres',
      admin_password: ADMIN_PASSWORD,
    });
    const cases: Array<[string, (info: Record<string, unknown>) => unknown, string]> = [
      ['no host', (info) => omit(info, 'host'), 'host'],
      ['an empty host', (info) => ({ ...info, host: '' }), 'host'],
      ['a numeric host', (info) => ({ ...info, host: 2130706433 }), 'host'],
      ['a null user_database', (info) => ({ ...info, user_database: null }), 'user_database'],
      ['no user_username', (info) => omit(info, 'user_username'), 'user_username'],
      ['no user_password (only the admin one)', (info) => omit(info, 'user_password'), 'user_password'],
      ['an empty user_password', (info) => ({ ...info, user_password: '' }), 'user_password'],
      ['the password as an array', (info) => ({ ...info, user_password: [PASSWORD] }), 'user_password'],
      ['no port', (info) => omit(info, 'port'), 'port'],
      ['port 0', (info) => ({ ...info, port: 0 }), 'port'],
      ['port 65536', (info) => ({ ...info, port: 65536 }), 'port'],
      ['a negative port', (info) => ({ ...info, port: -5432 }), 'port'],
      ['a fractional port', (info) => ({ ...info, port: 5432.5 }), 'port'],
      ['a port of letters', (info) => ({ ...info, port: 'postgres' }), 'port'],
      ['the password in the port', (info) => ({ ...info, port: PASSWORD }), 'port'],
      ['the info as unparsed JSON text', (info) => JSON.stringify(info), 'getDbConnectInfo'],
      ['an array', (info) => [info], 'getDbConnectInfo'],
      ['null', () => null, 'getDbConnectInfo'],
    ];

    it.each(cases)('%s', async (_label, spoil, variable) => {
      // Prepare
      const info = spoil(complete(await closedLoopbackPort()));
      const { logger, calls: lines } = captureLogger();
      const sqs = unusedSqs();
      const handler = createHandler({
        getDbConnectInfo: async () => info as DbConnectInfo,
        sqs: sqs.spy,
        queueUrl: QUEUE_URL,
        env: {},
        logger,
        retry: recordedBackoff().retry,
      });

      // Act
      const error = await handler(event).catch((thrown: unknown) => thrown);
      await handler.close();

      // Assess
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error).toMatchObject({ code: 'CONFIGURATION', variable });
      if (variable === 'getDbConnectInfo') expect((error as Error).message).toContain('getDbConnectInfo() must be a JSON object');
      else expect((error as Error).message).toContain(`"${variable}"`);
      for (const secret of [PASSWORD, ADMIN_PASSWORD]) {
        expect(whereSecretShows(error, secret)).toEqual([]);
        expect(secretInLines(lines, secret)).toEqual([]);
      }
      // Refused before a pool was built: nothing to connect, nothing to end.
      expect(poolEnd).not.toHaveBeenCalled();
      expect(sqs.calls).toEqual([]);
    });
  });

  describe('against the real server', () => {
    const { database: t, schema, sqs } = useOrcaSchema({
      prefix: 'orca_secrets',
      buckets: [BUCKET],
      sqs: true,
      serverOnly: true,
    });

    it.runIf(usingPostgres)(
      'runs a job with the password in the connection info, logs nothing of it at any level, and ends every connection on close()',
      async () => {
        // Prepare
        const clients: pg.Client[] = [];
        const endedClients = new Set<pg.Client>();
        class RecordingClient extends pg.Client {
          constructor(config?: string | pg.ClientConfig) {
            super(config);
            clients.push(this);
            this.once('end', () => endedClients.add(this));
          }
        }
        const jobId = await insertJob(t, schema, BUCKET);
        await seedOneOfEachReport(t, schema, jobId, BUCKET);
        const queue = await sqs.createQueue({ fifo: true });
        const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
        const { logger, calls: lines } = captureLogger();
        const handler = createHandler({
          getDbConnectInfo: async () => databaseUrlConnectInfo(PASSWORD),
          poolConfig: { Client: RecordingClient },
          sqs: sqs.sqs,
          queueUrl: queue.url,
          env: {},
          schema,
          logger,
          retry: recordedBackoff().retry,
        });

        // Act
        const output = await handler({ event: { jobId, orcaArchiveLocation: BUCKET, messageReceiptHandle: message.receiptHandle } });
        const openBeforeClose = clients.filter((client) => !endedClients.has(client)).length;
        await handler.close();

        // Assess
        expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
        expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Success);
        expect(await queue.messagesLeft()).toBe(0);
        expect(lines.map((line) => line.message)).toEqual(
          expect.arrayContaining(['database pool created', 'reconciliation started', 'reconciliation finished']),
        );
        expect(lines.some((line) => line.level === 'debug')).toBe(true);
        expect(secretInLines(lines, PASSWORD)).toEqual([]);
        expect(whereSecretShows(output, PASSWORD)).toEqual([]);
        // The pool the handler built held the password, and close() ended it and its clients.
        expect(endedPools()).toHaveLength(1);
        const pool = endedPools()[0]!;
        expect(pool.options.password).toBe(PASSWORD);
        expect(openBeforeClose).toBeGreaterThanOrEqual(1);
        expect(pool.ended).toBe(true);
        expect(pool.totalCount).toBe(0);
        const deadline = Date.now() + 2_000;
        while (endedClients.size < clients.length && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(endedClients.size).toBe(clients.length);
      },
    );

    it.runIf(usingPostgres)('keeps the password out of a server-side login failure', async () => {
      // Prepare: trust auth still refuses a role that does not exist.
      const role = `no_such_role_${randomBytes(6).toString('hex')}`;
      const { logger, calls: lines } = captureLogger();
      const { waits, retry } = recordedBackoff();
      const sqs = unusedSqs();
      const handler = createHandler({
        getDbConnectInfo: async () => databaseUrlConnectInfo(PASSWORD, { user_username: role }),
        sqs: sqs.spy,
        queueUrl: QUEUE_URL,
        env: {},
        schema,
        logger,
        retry,
      });

      // Act
      const error = await handler(event).catch((thrown: unknown) => thrown);
      await handler.close();

      // Assess: invalid_authorization_specification, not retried.
      expect(error).toBeInstanceOf(DatabaseError);
      expect(error).toMatchObject({ code: 'DATABASE', sqlState: '28000', operation: 'start job' });
      expect((error as Error).message).toContain(role);
      expect(waits).toEqual([]);
      expect(sqs.calls).toEqual([]);
      expect(whereSecretShows(error, PASSWORD)).toEqual([]);
      expect(secretInLines(lines, PASSWORD)).toEqual([]);
      expect(lines.some((line) => line.level === 'error')).toBe(true);
      expect(endedPools()).toHaveLength(1);
      expect(endedPools()[0]!.options.password).toBe(PASSWORD);
      expect(endedPools()[0]!.ended).toBe(true);
    });
  });
});
