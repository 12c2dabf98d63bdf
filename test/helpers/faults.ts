import { createServer } from 'node:net';
import pg from 'pg';
import type { TestDatabase } from './database.js';
import type { SeededKeys } from './scenarios.js';

/**
 * First key of the library's two-key job lock (src/guard.ts): "ORCA" in ASCII, 0x4F524341. A test
 * session that takes `pg_advisory_lock(JOB_LOCK_NAMESPACE, jobId)` stands in for another worker
 * holding the job.
 */
export const JOB_LOCK_NAMESPACE = 0x4f524341;

/** First key of the gate lock of {@link installReportGate}: "GATE" in ASCII, apart from the job lock. */
export const REPORT_GATE_NAMESPACE = 0x47415445;

/**
 * Moves the schema's job ids to a random range. Advisory locks are per database, not per schema,
 * and the library keys its job lock (and these tests their gate lock) by job id alone: test
 * files running at the same time, each in its own schema, would otherwise all have a job 1 and
 * wait for each other's locks. Ids stay below 2^31 so that they are their own lock key.
 */
export async function spreadJobIds(t: TestDatabase, schema: string): Promise<void> {
  const start = 1_000_000 + Math.floor(Math.random() * 2_000_000_000);
  await t.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), $2::int8)`, [`"${schema}".reconcile_job`, start]);
}

/** A loopback port nothing listens on: bound by the system, then released. */
export async function closedLoopbackPort(): Promise<number> {
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

/** A session-level advisory lock held by a connection of its own until `release()`. */
export interface HeldLock {
  /** Backend pid of the holding session. */
  pid: number;
  release(): Promise<void>;
}

export async function holdAdvisoryLock(key1: number, key2: number): Promise<HeldLock> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('test fixture: holdAdvisoryLock needs DATABASE_URL');
  const client = new pg.Client({ connectionString: url, application_name: 'orca-test-lock-holder' });
  await client.connect();
  const { rows } = await client.query<{ pid: number }>(
    'SELECT pg_backend_pid() AS pid, pg_advisory_lock($1::int4, $2::int4)',
    [key1, key2],
  );
  let released = false;
  return {
    pid: rows[0]!.pid,
    async release() {
      if (released) return;
      released = true;
      try {
        await client.query('SELECT pg_advisory_unlock($1::int4, $2::int4)', [key1, key2]);
      } finally {
        await client.end();
      }
    },
  };
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
 * the two-key advisory lock `lock`, in a transaction that began after `startedAfter` when given.
 * Waiting on an observed state, not on the clock, orders the test.
 */
export async function waitForLockWait(
  t: TestDatabase,
  applicationName: string,
  lock: readonly [number, number],
  options: { startedAfter?: string; timeoutMs?: number } = {},
): Promise<WaitingBackend> {
  const giveUpAt = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    // A two-int4 advisory lock shows in pg_locks as classid = key1, objid = key2, objsubid = 2.
    const rows = await t.query<WaitingBackend>(
      `SELECT a.pid, a.xact_start::text AS xact_start, a.query
       FROM pg_stat_activity a
       JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted AND l.locktype = 'advisory'
        AND l.classid::int8 = $2::int8 AND l.objid::int8 = $3::int8 AND l.objsubid = 2
       WHERE a.application_name = $1 AND a.wait_event_type = 'Lock'
         AND ($4::timestamptz IS NULL OR a.xact_start > $4::timestamptz)
       ORDER BY a.xact_start LIMIT 1`,
      [applicationName, lock[0], lock[1], options.startedAfter ?? null],
    );
    if (rows[0]) return rows[0];
    if (Date.now() > giveUpAt) {
      throw new Error(`test fixture: no backend of ${applicationName} started waiting for lock ${lock.join(', ')} in time`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Adds a trigger that makes every orphan report row wait, inside the report transaction, for the
 * advisory lock (REPORT_GATE_NAMESPACE, job_id). Nobody holds that lock unless a test takes it, so
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

/** Row counts of a job's three reports as another session sees them (committed rows only). */
export async function visibleReportCounts(t: TestDatabase, schema: string, jobId: number): Promise<number[]> {
  const s = `"${schema}"`;
  const [row] = await t.query<{ p: string; o: string; m: string }>(
    `SELECT (SELECT count(*) FROM ${s}.reconcile_phantom_report WHERE job_id = $1) AS p,
            (SELECT count(*) FROM ${s}.reconcile_orphan_report WHERE job_id = $1) AS o,
            (SELECT count(*) FROM ${s}.reconcile_catalog_mismatch_report WHERE job_id = $1) AS m`,
    [jobId],
  );
  return [Number(row!.p), Number(row!.o), Number(row!.m)];
}

/**
 * The report rows, as `readReports` returns them, that the spec requires for the catalog and
 * listing `seedOneOfEachReport` makes with the factory defaults. Timestamps are rendered by the
 * server, so the expectation follows the session's time zone as the rows read back do.
 */
export async function expectedOneOfEachReportRows(
  t: TestDatabase,
  jobId: number,
  bucket: string,
  keys: SeededKeys,
): Promise<{ phantoms: Record<string, unknown>[]; orphans: Record<string, unknown>[]; mismatches: Record<string, unknown>[] }> {
  const [times] = await t.query<{ granule: string; inventory: string }>(
    `SELECT to_jsonb('2025-06-01T12:00:00Z'::timestamptz) AS granule,
            to_jsonb('2026-01-01T00:30:00Z'::timestamptz) AS inventory`,
  );
  const granule = { collection_id: 'MOD09GQ___061', granule_id: `G-${jobId}` };
  return {
    phantoms: [
      {
        ...granule,
        filename: 'only-in-catalog.h5',
        key_path: keys.phantom,
        orca_etag: '"etag-1"',
        orca_last_update: times!.granule,
        orca_size: 100,
        orca_storage_class_id: 1,
      },
    ],
    orphans: [
      { key_path: keys.orphan, etag: '"etag-1"', last_update: times!.inventory, size_in_bytes: 100, storage_class: 'GLACIER' },
    ],
    mismatches: [
      {
        ...granule,
        filename: 'etag-differs.h5',
        key_path: keys.mismatch,
        cumulus_archive_location: `cumulus-${bucket}`,
        orca_etag: '"catalog"',
        s3_etag: '"s3"',
        orca_last_update: times!.granule,
        s3_last_update: times!.inventory,
        orca_size_in_bytes: 100,
        s3_size_in_bytes: 100,
        orca_storage_class_id: 1,
        s3_storage_class: 'GLACIER',
        discrepancy_type: 'etag',
      },
    ],
  };
}
