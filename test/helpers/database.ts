import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { orcaTablesSql } from '../../src/ddl.js';
import type { Database, DbConnectInfo } from '../../src/index.js';

/** A database for one test file: the real server when DATABASE_URL is set, PGlite otherwise. */
export interface TestDatabase {
  kind: 'postgres' | 'pglite';
  /** What the library under test receives: a pg Pool, or the PGlite instance. */
  db: Database;
  /** Runs one or more statements without parameters (DDL, fixtures). */
  exec(sql: string): Promise<void>;
  /** Runs one parameterised statement and returns its rows. */
  query<R = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

export const usingPostgres = Boolean(process.env.DATABASE_URL);

export async function openTestDatabase(): Promise<TestDatabase> {
  const url = process.env.DATABASE_URL;
  if (url) {
    const pool = new pg.Pool({ connectionString: url, max: 12 });
    // Fail here, loudly, when DATABASE_URL points at a server that is not there.
    await pool.query('SELECT 1');
    return {
      kind: 'postgres',
      db: pool,
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
    exec: async (sql) => {
      await lite.exec(sql);
    },
    query: async <R,>(sql: string, values?: unknown[]) => (await lite.query<R>(sql, values)).rows,
    close: () => lite.close(),
  };
}

/** A schema name no other test file uses. */
export function uniqueSchemaName(prefix = 'orca_test'): string {
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

/** Creates the ORCA schema `schema` with one partition per bucket; returns a function that drops it. */
export async function createOrcaSchema(
  database: TestDatabase,
  schema: string,
  buckets: readonly string[],
): Promise<() => Promise<void>> {
  await database.exec(orcaTablesSql(schema, buckets));
  return () => database.exec(`DROP SCHEMA "${schema}" CASCADE`);
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
