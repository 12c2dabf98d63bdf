import pg from 'pg';
import type { TestDatabase } from './database.js';

/**
 * Tools to order concurrent runs on the real server without sleeping: a test holds an advisory
 * lock from a session of its own, watches pg_locks until the runs it started queue up behind it,
 * and lets them go when it chooses. None of this works on PGlite (one session, no pg_locks
 * waiters), so the tests that use it run only when DATABASE_URL is set.
 */

/**
 * First key of the job lock the library takes, restated from README/spec ("ORCA" in ASCII):
 * the tests hold the contract, they do not import the implementation's constant.
 */
export const JOB_LOCK_NAMESPACE = 0x4f524341;
/** First key of the locks a test holds to stop a run at a chosen point ("TEST" in ASCII). */
export const PAUSE_LOCK_NAMESPACE = 0x54455354;

/** A two-key advisory lock, as `pg_advisory_lock(int4, int4)` takes it. */
export interface AdvisoryKey {
  namespace: number;
  key: number;
}

/** The lock every transaction of job `jobId` takes. */
export function jobLockKey(jobId: number): AdvisoryKey {
  return { namespace: JOB_LOCK_NAMESPACE, key: jobId % 2 ** 31 };
}

/** A pause lock no other test uses. */
export function newPauseKey(): AdvisoryKey {
  return { namespace: PAUSE_LOCK_NAMESPACE, key: 1 + Math.floor(Math.random() * (2 ** 31 - 2)) };
}

/**
 * Moves the schema's job id sequence to a random point below 2^31. Every test file on the
 * server shares one advisory lock space, and job ids 1, 2, 3 ... in each file's own schema
 * would make files wait on each other's job locks.
 */
export async function spreadJobIds(t: TestDatabase, schema: string): Promise<void> {
  const start = 1_000_000 + Math.floor(Math.random() * 2_000_000_000);
  await t.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), $2::int8)`, [`"${schema}".reconcile_job`, start]);
}

/** An advisory lock held by a session of its own, until `release()`. */
export interface HeldLock {
  release(): Promise<void>;
}

/** Opens a session on DATABASE_URL and takes the session-level advisory lock `lock` in it. */
export async function holdAdvisoryLock(lock: AdvisoryKey): Promise<HeldLock> {
  const client = new pg.Client({
    connectionString: process.env.DATABASE_URL,
    application_name: 'orca-reconcile-test-lock-holder',
  });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1::int4, $2::int4)', [lock.namespace, lock.key]);
  } catch (error) {
    await client.end();
    throw error;
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      try {
        await client.query('SELECT pg_advisory_unlock($1::int4, $2::int4)', [lock.namespace, lock.key]);
      } finally {
        await client.end();
      }
    },
  };
}

/** Sessions now waiting for the advisory lock `lock` (granted holders are not counted). */
export async function countLockWaiters(t: TestDatabase, lock: AdvisoryKey): Promise<number> {
  const [row] = await t.query<{ n: string | number }>(
    `SELECT count(*) AS n FROM pg_locks
     WHERE locktype = 'advisory' AND classid::int8 = $1::int8 AND objid::int8 = $2::int8 AND objsubid = 2
       AND NOT granted`,
    [lock.namespace, lock.key],
  );
  return Number(row!.n);
}

/**
 * Polls pg_locks until at least `count` sessions wait for `lock`, or fails after `timeoutMs`.
 * The poll interval only spaces the reads; the order of events comes from the lock itself.
 */
export async function waitForLockWaiters(
  t: TestDatabase,
  lock: AdvisoryKey,
  count: number,
  timeoutMs = 10_000,
): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const waiting = await countLockWaiters(t, lock);
    if (waiting >= count) return;
    if (Date.now() > giveUpAt) {
      throw new Error(
        `test fixture: ${waiting} of ${count} sessions waiting for advisory lock (${lock.namespace}, ${lock.key}) after ${timeoutMs} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Where a pause point stops a transaction: after a statement on a table, optionally only for some rows. */
export interface PausePointTarget {
  table: string;
  event: 'INSERT' | 'UPDATE' | 'DELETE';
  /** A row trigger condition over NEW/OLD, e.g. `NEW.status_id = 5`; without it, a statement trigger. */
  when?: string;
}

/**
 * Adds a trigger that makes the firing transaction wait for the advisory lock `lock`, inside
 * that transaction, after `target`'s statement. With the lock held by the test (see
 * {@link holdAdvisoryLock}), a run stops right there, its writes made but not committed.
 * Returns a function that drops the trigger again.
 */
export async function installPausePoint(
  t: TestDatabase,
  schema: string,
  name: string,
  target: PausePointTarget,
  lock: AdvisoryKey,
): Promise<() => Promise<void>> {
  const s = `"${schema}"`;
  const fn = `${s}."pause_${name}"`;
  const forEach = target.when ? `FOR EACH ROW WHEN (${target.when})` : 'FOR EACH STATEMENT';
  await t.exec(`
CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(${Math.trunc(lock.namespace)}, ${Math.trunc(lock.key)});
  RETURN NULL;
END
$$;
CREATE TRIGGER "pause_${name}" AFTER ${target.event} ON ${s}.${target.table} ${forEach} EXECUTE FUNCTION ${fn}();`);
  return () => t.exec(`DROP TRIGGER "pause_${name}" ON ${s}.${target.table}; DROP FUNCTION ${fn}();`);
}

/** A promise together with a flag that tells whether it has settled yet. */
export interface Tracked<T> {
  promise: Promise<T>;
  settled(): boolean;
}

/** Wraps a promise so a test can ask, later, whether it has settled (without awaiting it). */
export function track<T>(promise: Promise<T>): Tracked<T> {
  let settled = false;
  const observed = promise.finally(() => {
    settled = true;
  });
  // The caller awaits `promise`; this copy only records the settling.
  observed.catch(() => undefined);
  return { promise, settled: () => settled };
}
