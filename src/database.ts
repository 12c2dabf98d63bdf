import { READ_ONLY_SQL } from './sql/session.js';

/**
 * The smallest surface the library needs from a database: run one parameterised statement.
 * A `pg` Client or PoolClient and a PGlite instance fit as they are.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { generateReports, type Queryable } from 'orca-reconcile';
 *
 * const client: Queryable = new pg.Client({ connectionString: process.env.DATABASE_URL });
 * await (client as pg.Client).connect();
 * await generateReports(client, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' });
 * ```
 * @category Types
 */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * A `pg` Pool, or anything that lends out clients the same way. Each transaction borrows one
 * client and releases it, discarding a client whose connection failed.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import type { PoolLike } from 'orca-reconcile';
 *
 * const pool: PoolLike = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
 * ```
 * @category Types
 */
export interface PoolLike extends Queryable {
  connect(): Promise<Queryable & { release(error?: Error | boolean): void }>;
  readonly totalCount: number;
}

/**
 * A PGlite instance, or anything that runs a callback inside a transaction it manages.
 *
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite';
 * import { generateReports, type TransactionRunner } from 'orca-reconcile';
 *
 * const database: TransactionRunner = new PGlite();
 * await generateReports(database, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' });
 * ```
 * @category Types
 */
export interface TransactionRunner extends Queryable {
  transaction<T>(callback: (tx: Queryable) => Promise<T>): Promise<T>;
}

/**
 * What the library accepts as a database: a `pg` Pool, Client or PoolClient, or a PGlite
 * instance, passed as is. The library never closes a database it was given.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import type { Database } from 'orca-reconcile';
 *
 * const database: Database = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * ```
 * @category Types
 */
export type Database = Queryable | PoolLike | TransactionRunner;

/** Rows an INSERT, UPDATE or DELETE wrote: pg's `rowCount`, PGlite's `affectedRows`. */
export function affectedRows(result: unknown): number {
  const { rowCount, affectedRows: affected } = result as { rowCount?: number | null; affectedRows?: number };
  return Number(rowCount ?? affected ?? 0);
}

export function isTransactionRunner(database: Database): database is TransactionRunner {
  return typeof (database as Partial<TransactionRunner>).transaction === 'function';
}

export function isPool(database: Database): database is PoolLike {
  // A pg Client also has connect(), which would reconnect it: only pools count their clients.
  const candidate = database as Partial<PoolLike>;
  return typeof candidate.connect === 'function' && typeof candidate.totalCount === 'number';
}

/**
 * Runs `work` inside one transaction and commits it, or rolls back and re-throws on any error.
 * A pool lends one client for the duration; a client is used directly; PGlite uses its own
 * transaction method, which also keeps concurrent callers of one instance apart.
 */
export async function withTransaction<T>(database: Database, work: (tx: Queryable) => Promise<T>): Promise<T> {
  if (isTransactionRunner(database)) return database.transaction(work);
  if (!isPool(database)) return runOnClient(database, work);
  const client = await database.connect();
  let broken: Error | undefined;
  try {
    return await runOnClient(client, work, (error) => {
      broken = error;
    });
  } finally {
    // A client whose connection failed, or that could not roll back, must not be reused.
    client.release(broken);
  }
}

/** The event side of a `pg` client; PGlite and plain query functions have none. */
interface ErrorEmitter {
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}

function isErrorEmitter(client: unknown): client is ErrorEmitter {
  const candidate = client as Partial<ErrorEmitter>;
  return typeof candidate.on === 'function' && typeof candidate.off === 'function';
}

async function runOnClient<T>(
  client: Queryable,
  work: (tx: Queryable) => Promise<T>,
  onBroken?: (error: Error) => void,
): Promise<T> {
  // A pool stops listening to a client while it is lent out, and a pg client emits 'error' when
  // its connection drops. Unheard, that event would end the process before the failed query
  // could be retried; heard, the query itself rejects and the retry logic takes over.
  const onError = (error: Error) => onBroken?.(error);
  const emitter = isErrorEmitter(client) ? client : undefined;
  emitter?.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      onBroken?.(rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError)));
    });
    throw error;
  } finally {
    emitter?.off('error', onError);
  }
}

/** Read transactions open on a plain client, and how many readers share each. */
const sharedReads = new WeakMap<Queryable, { readers: number; failed: boolean }>();

/**
 * Runs read-only `work` in a transaction. On a pool each call borrows its own client, and PGlite
 * runs its own transactions. On a single `pg` Client, reads that overlap (one started inside
 * another's loop, or two consumed in turns) share one read-only transaction, committed when the
 * last of them ends: a second BEGIN and COMMIT would end the first read's transaction and
 * destroy its cursor.
 */
export async function withReadTransaction<T>(database: Database, work: (tx: Queryable) => Promise<T>): Promise<T> {
  const readOnly = async (tx: Queryable) => {
    await tx.query(READ_ONLY_SQL);
    return work(tx);
  };
  if (isTransactionRunner(database) || isPool(database)) return withTransaction(database, readOnly);
  const open = sharedReads.get(database);
  if (!open) {
    const share = { readers: 1, failed: false };
    sharedReads.set(database, share);
    try {
      await database.query('BEGIN');
      await database.query(READ_ONLY_SQL);
    } catch (error) {
      sharedReads.delete(database);
      await database.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    return runShared(database, share, work);
  }
  open.readers += 1;
  return runShared(database, open, work);
}

async function runShared<T>(
  client: Queryable,
  share: { readers: number; failed: boolean },
  work: (tx: Queryable) => Promise<T>,
): Promise<T> {
  try {
    return await work(client);
  } catch (error) {
    share.failed = true;
    throw error;
  } finally {
    share.readers -= 1;
    if (share.readers === 0) {
      sharedReads.delete(client);
      // A failed read may have aborted the transaction: then only a rollback ends it.
      if (share.failed) await client.query('ROLLBACK').catch(() => undefined);
      else await client.query('COMMIT');
    }
  }
}
