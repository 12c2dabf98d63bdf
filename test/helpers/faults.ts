/**
 * Ways to make a run fail, wait or retry when the test chooses, without sleeping: advisory locks
 * held from a session of the test's own and watched in pg_locks, pause points and a report gate
 * (triggers that wait for such a lock inside the run's transaction), a constraint that makes the
 * report statement fail, a loopback port nothing listens on, a watch on pg client errors nobody
 * handles, and retry settings that never wait.
 *
 * Holding and watching locks does not work on PGlite (one session, no pg_locks waiters), so the
 * tests that do it run only when DATABASE_URL is set; spreadJobIds and the triggers (pause
 * points, report gate) are harmless on either backend.
 */
import { createServer } from 'node:net';
import pg from 'pg';
import type { TestDatabase } from './database.js';

// --- Retry settings ---

/** Retry settings that neither wait nor jitter: for runs where a retry would only hide a failure. */
export const noWait = { sleep: async () => undefined, random: () => 0 };

/**
 * Retry settings that record each backoff instead of waiting it out. `random` is the jitter's
 * draw in [0, 1): each backoff gets that many seconds of jitter (none by default).
 */
export function recordedBackoff(random = 0) {
  const waits: number[] = [];
  return { waits, retry: { sleep: async (ms: number) => void waits.push(ms), random: () => random } };
}

// --- Connection faults ---

/** A loopback port nothing listens on: bound once by the OS, then released. */
export function closedLoopbackPort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Records every 'error' a client of `pool` emits while nothing listens for it. pg-pool removes
 * its own listener from a client while the client is checked out, and Node throws an 'error'
 * event nobody listens for as an uncaught exception: in a Lambda that ends the process. The
 * emit itself is left as it is (it still throws); the test only gets to see that it happened.
 */
export function watchUnhandledClientErrors(pool: pg.Pool): string[] {
  const unhandled: string[] = [];
  const watched = new WeakSet<pg.PoolClient>();
  pool.on('acquire', (client) => {
    if (watched.has(client)) return;
    watched.add(client);
    const emit = client.emit.bind(client);
    client.emit = (event: string | symbol, ...args: unknown[]): boolean => {
      if (event === 'error' && client.listenerCount('error') === 0) {
        unhandled.push(args[0] instanceof Error ? args[0].message : String(args[0]));
      }
      return emit(event, ...args);
    };
  });
  return unhandled;
}

// --- A report statement that fails ---

/**
 * An inventory key that {@link addPoisonedKeyConstraint} makes the orphan report refuse: a real
 * constraint of the test schema that this key violates, so that report generation fails inside
 * PostgreSQL itself.
 */
export const POISONED_KEY = 'poison/orphan.h5';

/** Adds the constraint `orphan_key_is_not_poison`, which no orphan report row of {@link POISONED_KEY} passes. */
export async function addPoisonedKeyConstraint(t: TestDatabase, schema: string): Promise<void> {
  await t.exec(
    `ALTER TABLE "${schema}".reconcile_orphan_report
       ADD CONSTRAINT orphan_key_is_not_poison CHECK (key_path <> '${POISONED_KEY}')`,
  );
}

// --- Advisory locks, pause points and the report gate ---

/** First key of the locks a test holds to stop a run at a chosen point ("TEST" in ASCII). */
const PAUSE_LOCK_NAMESPACE = 0x54455354;
/** First key of the gate lock of {@link installReportGate}: "GATE" in ASCII, apart from the job lock. */
const REPORT_GATE_NAMESPACE = 0x47415445;

/** A two-key advisory lock, as `pg_advisory_lock(int4, int4)` takes it. */
export interface AdvisoryKey {
  namespace: number;
  key: number;
}

/**
 * The lock every transaction of job `jobId` in `schema` takes, restated from the README: the
 * first key is the 32-bit FNV-1a hash of `orca-reconcile:"<schema>"` as a signed int4, the
 * second the job id modulo 2^31. The tests hold the contract; they do not import the
 * implementation. A test session that takes this lock stands in for another worker on the job.
 */
export function jobLockKey(schema: string, jobId: number): AdvisoryKey {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(`orca-reconcile:"${schema}"`, 'utf8')) hash = Math.imul(hash ^ byte, 0x01000193);
  return { namespace: hash | 0, key: jobId % 2 ** 31 };
}

/** The gate lock of job `jobId` that {@link installReportGate}'s trigger waits for. */
export function reportGateKey(jobId: number): AdvisoryKey {
  return { namespace: REPORT_GATE_NAMESPACE, key: jobId };
}

/** A pause lock no other test uses. */
export function newPauseKey(): AdvisoryKey {
  return { namespace: PAUSE_LOCK_NAMESPACE, key: 1 + Math.floor(Math.random() * (2 ** 31 - 2)) };
}

/**
 * Moves the schema's job id sequence to a random point below 2^31. Advisory locks are per
 * database, not per schema, and the library keys its job lock (and these tests their gate lock)
 * by job id alone: test files running at the same time, each in its own schema, would otherwise
 * all have a job 1 and wait for each other's locks. Ids stay below 2^31 so that they are their
 * own lock key.
 */
export async function spreadJobIds(t: TestDatabase, schema: string): Promise<void> {
  const start = 1_000_000 + Math.floor(Math.random() * 2_000_000_000);
  await t.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), $2::int8)`, [`"${schema}".reconcile_job`, start]);
}

/** A session-level advisory lock held by a connection of its own until `release()`. */
export interface HeldLock {
  /** Backend pid of the holding session. */
  pid: number;
  release(): Promise<void>;
}

/** Opens a session on DATABASE_URL and takes the session-level advisory lock `lock` in it. */
export async function holdAdvisoryLock(lock: AdvisoryKey): Promise<HeldLock> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('test fixture: holdAdvisoryLock needs DATABASE_URL');
  const client = new pg.Client({ connectionString: url, application_name: 'orca-reconcile-test-lock-holder' });
  await client.connect();
  let pid: number;
  try {
    const { rows } = await client.query<{ pid: number }>(
      'SELECT pg_backend_pid() AS pid, pg_advisory_lock($1::int4, $2::int4)',
      [lock.namespace, lock.key],
    );
    pid = rows[0]!.pid;
  } catch (error) {
    await client.end();
    throw error;
  }
  let released = false;
  return {
    pid,
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

/**
 * The condition on pg_locks row `l` for the two-int4 advisory lock whose keys are the statement
 * parameters `ns` and `key` (e.g. '$1', '$2'): such a lock shows as classid = key1, objid = key2,
 * objsubid = 2.
 */
function advisoryLockMatch(l: string, ns: string, key: string): string {
  // classid and objid are oids, unsigned: a negative int4 key shows as its two's complement.
  return `${l}.locktype = 'advisory' AND ${l}.classid::int8 = (${ns}::int8 & 4294967295) AND ${l}.objid::int8 = (${key}::int8 & 4294967295)
    AND ${l}.objsubid = 2`;
}

/**
 * Calls `read` every `intervalMs` until it returns a value, and fails with `giveUpMessage()`
 * once `timeoutMs` have passed. The interval only spaces the reads; the order of events comes
 * from what `read` observes.
 */
async function pollUntil<T>(
  read: () => Promise<T | undefined>,
  giveUpMessage: () => string,
  timeoutMs: number,
  intervalMs: number,
): Promise<T> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > giveUpAt) throw new Error(giveUpMessage());
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Sessions now waiting for the advisory lock `lock` (granted holders are not counted). */
export async function countLockWaiters(t: TestDatabase, lock: AdvisoryKey): Promise<number> {
  const [row] = await t.query<{ n: string | number }>(
    `SELECT count(*) AS n FROM pg_locks l WHERE ${advisoryLockMatch('l', '$1', '$2')} AND NOT l.granted`,
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
  let waiting = 0;
  await pollUntil(
    async () => {
      waiting = await countLockWaiters(t, lock);
      return waiting >= count ? waiting : undefined;
    },
    () =>
      `test fixture: ${waiting} of ${count} sessions waiting for advisory lock (${lock.namespace}, ${lock.key}) after ${timeoutMs} ms`,
    timeoutMs,
    5,
  );
}

/** A backend of the library under test as pg_stat_activity shows it. */
export interface WaitingBackend {
  pid: number;
  /** Start of the backend's transaction, as text to keep PostgreSQL's microseconds. */
  xact_start: string;
  query: string;
}

/**
 * Polls pg_stat_activity (bounded by `timeoutMs`) until a backend of `applicationName` waits for
 * the advisory lock `lock`, in a transaction that began after `startedAfter` when given.
 * Waiting on an observed state, not on the clock, orders the test.
 */
export async function waitForLockWait(
  t: TestDatabase,
  applicationName: string,
  lock: AdvisoryKey,
  options: { startedAfter?: string; timeoutMs?: number } = {},
): Promise<WaitingBackend> {
  return pollUntil(
    async () => {
      const rows = await t.query<WaitingBackend>(
        `SELECT a.pid, a.xact_start::text AS xact_start, a.query
         FROM pg_stat_activity a
         JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted AND ${advisoryLockMatch('l', '$2', '$3')}
         WHERE a.application_name = $1 AND a.wait_event_type = 'Lock'
           AND ($4::timestamptz IS NULL OR a.xact_start > $4::timestamptz)
         ORDER BY a.xact_start LIMIT 1`,
        [applicationName, lock.namespace, lock.key, options.startedAfter ?? null],
      );
      return rows[0];
    },
    () =>
      `test fixture: no backend of ${applicationName} started waiting for lock ${lock.namespace}, ${lock.key} in time`,
    options.timeoutMs ?? 10_000,
    20,
  );
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

/**
 * Adds a trigger that makes every orphan report row wait, inside the report transaction, for the
 * advisory lock {@link reportGateKey}(job_id). Nobody holds that lock unless a test takes it, so
 * the trigger costs nothing otherwise; a test that holds it pauses the report transaction at a
 * known point, after the report rows are written and before they commit.
 */
export async function installReportGate(t: TestDatabase, schema: string): Promise<void> {
  const s = `"${schema}"`;
  await t.exec(`
CREATE FUNCTION ${s}.wait_at_report_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(${REPORT_GATE_NAMESPACE}, NEW.job_id::int4);
  RETURN NULL;
END
$$;
CREATE TRIGGER wait_at_report_gate AFTER INSERT ON ${s}.reconcile_orphan_report
  FOR EACH ROW EXECUTE FUNCTION ${s}.wait_at_report_gate();`);
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
