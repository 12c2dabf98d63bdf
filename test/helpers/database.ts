import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, type RunnerTask } from 'vitest';
import { orcaTablesSql, progressTablesSql } from '../../src/sql/ddl.js';
import type { Database, DbConnectInfo } from '../../src/index.js';
import { type TestSqs, useTestSqs } from './sqs.js';

/** A database for one test file: the real server when DATABASE_URL is set, PGlite otherwise. */
export interface TestDatabase {
  kind: 'postgres' | 'pglite';
  /** What the library under test receives: a pg Pool, or the PGlite instance. */
  db: Database;
  /** Runs one or more statements without parameters (DDL, fixtures). */
  exec(sql: string): Promise<void>;
  /** Runs one parameterised statement and returns its rows. */
  query<R = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<R[]>;
}

interface OpenTestDatabase extends TestDatabase {
  /** The pg Pool behind `db` on the real server; PGlite has none. */
  pool: pg.Pool | undefined;
  close(): Promise<void>;
}

export const usingPostgres = Boolean(process.env.DATABASE_URL);

async function openTestDatabase(): Promise<OpenTestDatabase> {
  const url = process.env.DATABASE_URL;
  if (url) {
    const pool = new pg.Pool({ connectionString: url, max: 12 });
    // Fail here, loudly, when DATABASE_URL points at a server that is not there.
    await pool.query('SELECT 1');
    return {
      kind: 'postgres',
      db: pool,
      pool,
      exec: async (sql) => {
        await pool.query(sql);
      },
      query: async <R,>(sql: string, values?: unknown[]) => (await pool.query(sql, values)).rows as R[],
      close: () => pool.end(),
    };
  }
  const lite = await PGlite.create();
  return {
    kind: 'pglite',
    db: lite,
    pool: undefined,
    exec: async (sql) => {
      await lite.exec(sql);
    },
    query: async <R,>(sql: string, values?: unknown[]) => (await lite.query<R>(sql, values)).rows,
    close: () => lite.close(),
  };
}

/** A schema name no other test file uses. */
function uniqueSchemaName(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * DATABASE_URL as connection info (the shape `getDbConnectInfo` returns), with `password` set
 * (the test server's trust auth never asks for it) and `overrides` applied.
 */
export function databaseUrlConnectInfo(password: string, overrides: Partial<DbConnectInfo> = {}): DbConnectInfo {
  const url = new URL(process.env.DATABASE_URL!);
  return {
    host: url.hostname,
    port: url.port || '5432',
    user_database: decodeURIComponent(url.pathname.slice(1)),
    user_username: decodeURIComponent(url.username),
    user_password: password,
    ...overrides,
  };
}

/**
 * A pg Pool on DATABASE_URL for the library under test, tagged with `applicationName` so the test
 * can find its backends in pg_stat_activity. An idle connection that dies is only logged by the
 * pool's own listener here, as a long-lived service would do.
 */
export function libraryPool(applicationName: string): pg.Pool {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('test fixture: libraryPool needs DATABASE_URL');
  const pool = new pg.Pool({ connectionString: url, application_name: applicationName, max: 4 });
  pool.on('error', () => undefined);
  return pool;
}

/**
 * What is wrong with `pool` once a test is over, or undefined when nothing is: a client still
 * checked out (never released) or a caller still waiting for one.
 */
export function leakedClients(pool: pg.Pool, name: string): string | undefined {
  const checkedOut = pool.totalCount - pool.idleCount;
  if (checkedOut <= 0 && pool.waitingCount <= 0) return undefined;
  return (
    `pool "${name}" leaked clients: ${checkedOut} checked out and not released, ${pool.waitingCount} connect() calls ` +
    `waiting (total ${pool.totalCount}, idle ${pool.idleCount}) after the test`
  );
}

export interface OrcaSchemaOptions {
  /** The archive buckets: the inventory table gets one partition per bucket. */
  buckets: readonly string[];
  /** Starts the SQS emulator for the file too. */
  sqs?: boolean;
  /** Empties the catalog, inventory, job and report tables before each test. */
  emptyTablesBeforeEach?: boolean;
  /** Opens and starts nothing on PGlite: for files whose tests need the real server (a URL to connect to). */
  serverOnly?: boolean;
  /** Start of the schema name, to tell the files' schemas apart on the server. */
  prefix?: string;
}

export interface OrcaSchemaFixture {
  /** The file's database, usable from the file's own hooks and tests on. */
  database: TestDatabase;
  /** The name of the file's ORCA schema. */
  schema: string;
  /** The SQS emulator; only with the `sqs` option. */
  sqs: TestSqs;
  /** Empties every table a reconciliation run reads or writes, so a test starts from nothing. */
  emptyTables(): Promise<void>;
  /** A schema name of its own for a test that creates one, dropped with the file's schema. */
  extraSchema(prefix: string): string;
  /** Adds a pool of the file's own: checked for leaked clients after each test, ended after the file. */
  addPool(pool: pg.Pool, name?: string): pg.Pool;
  /** What {@link leakedClients} finds on the file's pools now; the check after each test fails on any. */
  poolLeaks(): string[];
}

const TEST_DATABASE_POOL = 'test database';

/** A pool and the clients it has lent out now, so that a client a test kept can be taken back. */
interface WatchedPool {
  pool: pg.Pool;
  name: string;
  checkedOut: Set<pg.PoolClient>;
}

function watchPool(pool: pg.Pool, name: string): WatchedPool {
  const checkedOut = new Set<pg.PoolClient>();
  pool.on('acquire', (client) => checkedOut.add(client));
  pool.on('release', (_error, client) => checkedOut.delete(client));
  return { pool, name, checkedOut };
}

/** Whether every test under `task` that was meant to run passed, and no hook of its suites failed. */
function allPassed(task: RunnerTask): boolean {
  if (task.type === 'suite') return task.result?.state !== 'fail' && task.tasks.every(allPassed);
  return (task.mode !== 'run' && task.mode !== 'only') || task.result?.state === 'pass';
}

/**
 * The test database and an ORCA schema for the tests of the enclosing describe; call it at the
 * top of that describe. Before the tests it opens the database and creates the schema, with one
 * inventory partition per bucket (and starts the SQS emulator with `sqs`). After each test it
 * fails the test when a client of a pg pool was not given back (PGlite has no pool). After the
 * tests it drops the schema only when all of them passed, so a failure leaves it to inspect,
 * and closes the database.
 *
 * @example
 * ```ts
 * const { database: t, schema, sqs } = useOrcaSchema({ buckets: [BUCKET], sqs: true, emptyTablesBeforeEach: true });
 * ```
 */
export function useOrcaSchema(options: OrcaSchemaOptions): OrcaSchemaFixture {
  const schema = uniqueSchemaName(options.prefix ?? 'orca_test');
  const schemas = [schema];
  const pools: WatchedPool[] = [];
  const active = !options.serverOnly || usingPostgres;
  let opened: OpenTestDatabase | undefined;

  const current = (): OpenTestDatabase => {
    if (!opened) {
      throw new Error(
        active
          ? 'test fixture: the test database is not open yet: use it inside a hook or a test'
          : 'test fixture: this file opens the test database only on the real server (DATABASE_URL)',
      );
    }
    return opened;
  };
  const leaks = (): string[] =>
    pools.flatMap(({ pool, name }) => {
      const found = leakedClients(pool, name);
      return found === undefined ? [] : [found];
    });
  const emptyTables = async (): Promise<void> => {
    const s = `"${schema}"`;
    await current().exec(`TRUNCATE ${s}.files, ${s}.granules, ${s}.reconcile_s3_object, ${s}.reconcile_job,
      ${s}.reconcile_phantom_report, ${s}.reconcile_orphan_report, ${s}.reconcile_catalog_mismatch_report,
      ${s}.orca_reconcile_run CASCADE`);
  };

  beforeAll(async () => {
    if (!active) return;
    opened = await openTestDatabase();
    if (opened.pool) pools.push(watchPool(opened.pool, TEST_DATABASE_POOL));
    await opened.exec(orcaTablesSql(schema, options.buckets) + progressTablesSql(schema));
  });
  // vitest passes hook fixtures first, the suite second.
  // eslint-disable-next-line no-empty-pattern
  afterAll(async ({}, suite) => {
    const database = opened;
    opened = undefined;
    try {
      for (const { pool } of pools) if (pool !== database?.pool && !pool.ended) await pool.end();
      if (database?.kind === 'postgres') {
        if (allPassed(suite)) {
          for (const name of schemas) await database.exec(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
        } else {
          const kept = schemas.map((name) => `"${name}"`).join(', ');
          console.warn(`test fixture: a test failed, so schema ${kept} stays for inspection`);
        }
      }
    } finally {
      pools.length = 0;
      await database?.close();
    }
  });
  if (options.emptyTablesBeforeEach) {
    beforeEach(async () => {
      if (opened) await emptyTables();
    });
  }
  afterEach(() => {
    const found = leaks();
    if (found.length === 0) return;
    // Takes the leaked clients back, closing their connections, so that the next tests and the
    // end of the pool do not wait for them.
    for (const { checkedOut } of pools) for (const client of checkedOut) client.release(true);
    throw new Error(`test fixture: ${found.join('; ')}`);
  });

  let sqs: TestSqs | undefined;
  if (options.sqs) sqs = useTestSqs(active);

  const database: TestDatabase = {
    get kind() {
      return current().kind;
    },
    get db() {
      return current().db;
    },
    exec: (sql) => current().exec(sql),
    query: <R,>(sql: string, values?: unknown[]) => current().query<R>(sql, values),
  };
  return {
    database,
    schema,
    get sqs(): TestSqs {
      if (!sqs) throw new Error('test fixture: the SQS emulator runs only with useOrcaSchema({ sqs: true })');
      return sqs;
    },
    emptyTables,
    extraSchema(prefix) {
      const name = uniqueSchemaName(prefix);
      schemas.push(name);
      return name;
    },
    addPool(pool, name = pool.options.application_name ?? 'pool of the file') {
      pools.push(watchPool(pool, name));
      return pool;
    },
    poolLeaks: leaks,
  };
}
