import pg from 'pg';
import type { TestDatabase } from './database.js';
import type { SeededKeys } from './scenarios.js';

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
