import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { DatabaseError, OrcaStatus, createHandler, type DbConnectInfo } from '../../src/index.js';
import { databaseUrlConnectInfo, useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { noWait } from '../helpers/faults.js';
import { type PasswordGate, startPasswordGate } from '../helpers/password-gate.js';
import { captureLogger, whereSecretShows } from '../helpers/recording.js';
import { readJob, stageJob } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
const password = (): string => `Rotated-${randomBytes(12).toString('hex')}`;

// The server trusts loopback connections, so the pool the handler builds connects through a
// password gate (test/helpers/password-gate.ts) that checks each new connection's password
// against the role's verifier in pg_authid, as a `password` line of pg_hba.conf would. PGlite has
// no network to put a gate in front of: these cases run against the server only.
describe.runIf(usingPostgres)('a rotated database password', () => {
  const { database: t, schema, sqs } = useOrcaSchema({
    prefix: 'orca_rotation',
    buckets: [BUCKET],
    sqs: true,
    emptyTablesBeforeEach: true,
  });
  let gate: PasswordGate;
  let roleCreated = false;
  const role = `orca_rotation_${process.pid}_${randomBytes(4).toString('hex')}`;
  let poolEnd: MockInstance<pg.Pool['end']>;

  /** The secret as Secrets Manager holds it now; each read is counted. */
  const secret = { current: undefined as DbConnectInfo | undefined, reads: 0 };
  const getDbConnectInfo = async (): Promise<DbConnectInfo> => {
    secret.reads += 1;
    return { ...secret.current! };
  };
  /** What a rotation does: a new password for the role, then the secret updated to it. */
  const rotate = async (options: { updateSecret: boolean }): Promise<string> => {
    const next = password();
    await t.exec(`ALTER ROLE "${role}" PASSWORD '${next}'`);
    if (options.updateSecret) secret.current = { ...secret.current!, user_password: next };
    return next;
  };

  beforeAll(async () => {
    const first = password();
    // The grants of README "Database grants", for a role of this test's own.
    await t.exec(`CREATE ROLE "${role}" LOGIN PASSWORD '${first}'`);
    roleCreated = true;
    await t.exec(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}";
      GRANT SELECT ON "${schema}".files, "${schema}".granules, "${schema}".storage_class, "${schema}".reconcile_s3_object TO "${role}";
      GRANT SELECT, UPDATE ON "${schema}".reconcile_job TO "${role}";
      GRANT SELECT, INSERT, DELETE ON "${schema}".reconcile_phantom_report, "${schema}".reconcile_orphan_report,
        "${schema}".reconcile_catalog_mismatch_report TO "${role}"`);
    const server = databaseUrlConnectInfo('');
    gate = await startPasswordGate(t, { host: server.host, port: Number(server.port) });
    secret.current = { ...databaseUrlConnectInfo(first), host: '127.0.0.1', port: gate.port, user_username: role };
  });
  // Runs before the fixture's own teardown, which drops the schema (or keeps it after a failure):
  // DROP OWNED BY takes back the role's grants on it first, so the role can go in either case.
  afterAll(async () => {
    await gate?.close();
    if (roleCreated) await t.exec(`DROP OWNED BY "${role}"; DROP ROLE "${role}"`);
  });
  beforeEach(() => {
    secret.reads = 0;
    poolEnd = vi.spyOn(pg.Pool.prototype, 'end');
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /**
   * A handler whose pool opens a new connection for every transaction (maxUses 1), as a warm
   * container does once its idle connections have timed out.
   */
  const handlerWithOwnPool = (queueUrl: string) => {
    const { logger, lines } = captureLogger();
    const handler = createHandler({
      getDbConnectInfo,
      poolConfig: { maxUses: 1 },
      sqs: sqs.sqs,
      queueUrl,
      env: {},
      schema,
      logger,
      retry: noWait,
    });
    return { handler, lines };
  };

  it('the gate refuses a wrong password with the server error 28P01, and admits the right one', async () => {
    // Prepare
    const wrong = new pg.Client({ ...toClientConfig(secret.current!), password: 'not-the-password' });
    const right = new pg.Client(toClientConfig(secret.current!));

    // Act
    const refusal = await wrong.connect().catch((thrown: unknown) => thrown);
    await right.connect();
    const [row] = (await right.query<{ user: string }>('SELECT current_user AS user')).rows;
    await right.end();

    // Assess
    expect(refusal).toMatchObject({ code: '28P01', severity: 'FATAL', message: `password authentication failed for user "${role}"` });
    expect(row?.user).toBe(role);
  });

  it('reads the secret again once and reconnects with a new pool, so the run after a rotation succeeds', async () => {
    // Prepare: one run on the first password, then a rotation.
    const queue = await sqs.createQueue({ fifo: true });
    const first = await stageJob(t, schema, BUCKET, queue);
    const { handler, lines } = handlerWithOwnPool(queue.url);
    await handler(first.event);
    expect(secret.reads).toBe(1);
    const rotated = await rotate({ updateSecret: true });
    const refusedBefore = gate.refused();
    // The next day's listing replaces the bucket's inventory (and, here, its catalog).
    await t.exec(`TRUNCATE "${schema}".files, "${schema}".granules, "${schema}".reconcile_s3_object`);
    const second = await stageJob(t, schema, BUCKET, queue);

    // Act
    let output: unknown;
    try {
      output = await handler(second.event);
    } finally {
      await handler.close();
    }

    // Assess: refused with the old password, then the secret read again, and the run done.
    expect(output).toEqual({ jobId: second.jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    expect(gate.refused()).toBeGreaterThan(refusedBefore);
    expect(secret.reads).toBe(2);
    expect((await readJob(t, schema, second.jobId)).status_id).toBe(OrcaStatus.Success);
    expect(await queue.messagesLeft()).toBe(0);
    expect(lines.filter((line) => line.includes('the database refused the password: reading the connection details again'))).toHaveLength(1);
    expect(lines.join('\n')).not.toContain(rotated);
    // The old pool and the new one are both ended: no connection is left behind.
    const pools = poolEnd.mock.contexts as pg.Pool[];
    expect(pools).toHaveLength(2);
    expect(pools.map((pool) => pool.options.password)).toEqual([expect.not.stringMatching(rotated), rotated]);
    expect(pools.every((pool) => pool.ended)).toBe(true);
  });

  it('reads the secret again only once: a secret still holding the old password fails with DatabaseError 28P01', async () => {
    // Prepare: the role's password changes, the secret does not.
    const queue = await sqs.createQueue();
    const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
    const { handler } = handlerWithOwnPool(queue.url);
    await rotate({ updateSecret: false });

    // Act
    let error: unknown;
    try {
      error = await handler(event).catch((thrown: unknown) => thrown);
    } finally {
      await handler.close();
    }

    // Assess
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'DATABASE', sqlState: '28P01', operation: 'start job' });
    expect(secret.reads).toBe(2);
    expect(whereSecretShows(error, secret.current!.user_password)).toEqual([]);
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Staged);
    expect(await queue.messagesLeft()).toBe(1);
  });

  it('does not read connection details for a database it was given', async () => {
    // Prepare: an injected pool on the gate with a password that is not the role's.
    const queue = await sqs.createQueue();
    const { event } = await stageJob(t, schema, BUCKET, queue);
    const stale = new pg.Pool({ ...toClientConfig(secret.current!), password: 'stale-password', max: 1 });
    const handler = createHandler({ database: stale, getDbConnectInfo, sqs: sqs.sqs, queueUrl: queue.url, env: {}, schema, retry: noWait });

    // Act
    let error: unknown;
    try {
      error = await handler(event).catch((thrown: unknown) => thrown);
    } finally {
      await handler.close();
      await stale.end();
    }

    // Assess
    expect(error).toMatchObject({ sqlState: '28P01' });
    expect(secret.reads).toBe(0);
  });
});

function toClientConfig(info: DbConnectInfo): pg.ClientConfig {
  return { host: info.host, port: Number(info.port), database: info.user_database, user: info.user_username, password: info.user_password };
}
