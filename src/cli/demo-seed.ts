// The demo's sample archive: its constants, the counts its reports must show, and the set-based
// statements that seed it.
import type { PGlite } from '@electric-sql/pglite';
import { quoteSchema } from '../sql/schema.js';

export const SCHEMA = 'orca';
export const PRIMARY = 'demo-orca-primary';
export const SECONDARY = 'demo-orca-secondary';
export const FILES_PER_GRANULE = 6;
export const ROWS_SHOWN = 5;
export const QUEUE_NAME = 'orca-internal-report-demo.fifo';
export const MIN_FILES = 500;
export const MAX_FILES = 1_000_000;

// Each catalog file i of the primary bucket has a slot i % PERIOD; one slot makes it a phantom,
// seven others each make one kind of mismatch, so every combination is present from 500 files on.
const PERIOD = 500;
const PHANTOM_SLOT = 7;
const MISMATCH_SLOTS = {
  etag: 71,
  size_in_bytes: 143,
  storage_class: 214,
  'etag, size_in_bytes': 286,
  'etag, storage_class': 357,
  'size_in_bytes, storage_class': 429,
  'etag, size_in_bytes, storage_class': 493,
} as const;
const ORPHANS_PER_FILE = 1 / 250;

/** How many of files 1..files have slot `slot`. */
const inSlot = (files: number, slot: number): number => (files < slot ? 0 : Math.floor((files - slot) / PERIOD) + 1);

/** What the primary job's reports must hold for a demo archive of `files` catalog files. */
export function expectedDemoCounts(files: number) {
  const byType = Object.fromEntries(
    Object.entries(MISMATCH_SLOTS).map(([type, slot]) => [type, inSlot(files, slot)]),
  ) as Record<keyof typeof MISMATCH_SLOTS, number>;
  return {
    phantoms: inSlot(files, PHANTOM_SLOT),
    orphans: Math.floor(files * ORPHANS_PER_FILE),
    mismatches: Object.values(byType).reduce((sum, n) => sum + n, 0),
    byType,
  };
}


const q = quoteSchema(SCHEMA);

// Records each status a job takes, with the time, as ORCA's own tables keep only the last one.
export const STATUS_TRAIL_SQL = `
CREATE TABLE ${q}.demo_job_status_trail (
  seq bigserial PRIMARY KEY,
  job_id int8 NOT NULL,
  status_id int2 NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION ${q}.demo_record_job_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.status_id IS DISTINCT FROM OLD.status_id THEN
    INSERT INTO ${q}.demo_job_status_trail (job_id, status_id) VALUES (NEW.id, NEW.status_id);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER demo_record_job_status AFTER INSERT OR UPDATE ON ${q}.reconcile_job
  FOR EACH ROW EXECUTE FUNCTION ${q}.demo_record_job_status();`;

type Tx = Pick<PGlite, 'query'>;

const slots = (...types: (keyof typeof MISMATCH_SLOTS)[]): string => `{${types.map((type) => MISMATCH_SLOTS[type]).join(',')}}`;

/**
 * Seeds both buckets with set-based statements: catalog, jobs (getting S3 list, then staged once
 * the listing is in, as ORCA's loader does) and listings. The secondary bucket holds copies of the
 * first primary files on the same key paths with other etags and storage class, so a row read
 * across buckets would change the primary job's counts.
 */
export async function seed(tx: Tx, files: number) {
  const granules = Math.ceil(files / FILES_PER_GRANULE);
  const secondaryFiles = Math.max(50, Math.floor(files / 10));
  await tx.query(`INSERT INTO ${q}.providers VALUES ('LPDAAC', 'LP DAAC')`);
  await tx.query(`INSERT INTO ${q}.collections VALUES ('MOD09GQ___061', 'MOD09GQ', '061'), ('MYD13A1___061', 'MYD13A1', '061')`);
  await tx.query(
    `INSERT INTO ${q}.granules (id, provider_id, collection_id, cumulus_granule_id, execution_id, ingest_time, cumulus_create_time, last_update)
     SELECT g, 'LPDAAC', c.collection_id, format('%s.A%s', c.shortname, lpad(g::text, 6, '0')), 'demo-execution-' || g,
            t, t, t + interval '1 hour'
     FROM generate_series(1, $1::int) AS g
     JOIN ${q}.collections c ON c.collection_id = CASE WHEN g % 2 = 1 THEN 'MOD09GQ___061' ELSE 'MYD13A1___061' END
     CROSS JOIN LATERAL (SELECT timestamptz '2025-06-01T00:00:00Z' + g * interval '1 minute' AS t) AS at`,
    [granules],
  );
  await tx.query(
    `INSERT INTO ${q}.files (id, granule_id, name, orca_archive_location, cumulus_archive_location, key_path, ingest_time,
                            etag, version, size_in_bytes, storage_class_id)
     SELECT i, gr.id, n.name, $2::text, 'cumulus-' || $2::text, gr.collection_id || '/' || n.name, gr.ingest_time,
            '"' || md5('demo-' || i) || '"', 'v1', 1048576 + (i * 7919) % 9000000, CASE WHEN i % 5 = 0 THEN 2 ELSE 1 END
     FROM generate_series(1, $1::int) AS i
     JOIN ${q}.granules gr ON gr.id = (i - 1) / ${FILES_PER_GRANULE} + 1
     CROSS JOIN LATERAL (SELECT format('%s.B%s.hdf', gr.cumulus_granule_id, lpad(((i - 1) % ${FILES_PER_GRANULE} + 1)::text, 2, '0')) AS name) AS n`,
    [files, PRIMARY],
  );
  await tx.query(
    `INSERT INTO ${q}.files (id, granule_id, name, orca_archive_location, cumulus_archive_location, key_path, ingest_time,
                            etag, version, size_in_bytes, storage_class_id)
     SELECT $3::int8 + f.id, f.granule_id, f.name, $2::text, 'cumulus-' || $2::text, f.key_path, f.ingest_time,
            '"' || md5('secondary-' || f.id) || '"', 'v1', f.size_in_bytes + 1, 2
     FROM ${q}.files f WHERE f.id <= $1::int8`,
    [secondaryFiles, SECONDARY, files],
  );
  const jobs = await tx.query<{ id: string }>(
    `INSERT INTO ${q}.reconcile_job (orca_archive_location, status_id, inventory_creation_time, start_time, last_update)
     VALUES ($1, 1, now(), now(), now()), ($2, 1, now(), now(), now()) RETURNING id`,
    [PRIMARY, SECONDARY],
  );
  const [jobId, otherJobId] = jobs.rows.map((row) => Number(row.id)) as [number, number];

  const primaryListing = await tx.query(
    `INSERT INTO ${q}.reconcile_s3_object (job_id, orca_archive_location, key_path, etag, last_update, size_in_bytes, storage_class)
     SELECT $1::int8, f.orca_archive_location, f.key_path,
            CASE WHEN fate.slot = ANY($4::int[]) THEN '"' || md5('changed-' || f.id) || '"' ELSE f.etag END,
            f.ingest_time + interval '1 day',
            f.size_in_bytes + CASE WHEN fate.slot = ANY($5::int[]) THEN 4096 ELSE 0 END,
            CASE WHEN (f.storage_class_id = 1) <> (fate.slot = ANY($6::int[])) THEN 'GLACIER' ELSE 'DEEP_ARCHIVE' END
     FROM ${q}.files f CROSS JOIN LATERAL (SELECT (f.id % ${PERIOD})::int AS slot) AS fate
     WHERE f.orca_archive_location = $2 AND fate.slot <> $3`,
    [
      jobId,
      PRIMARY,
      PHANTOM_SLOT,
      slots('etag', 'etag, size_in_bytes', 'etag, storage_class', 'etag, size_in_bytes, storage_class'),
      slots('size_in_bytes', 'etag, size_in_bytes', 'size_in_bytes, storage_class', 'etag, size_in_bytes, storage_class'),
      slots('storage_class', 'etag, storage_class', 'size_in_bytes, storage_class', 'etag, size_in_bytes, storage_class'),
    ],
  );
  const orphans = await tx.query(
    `INSERT INTO ${q}.reconcile_s3_object (job_id, orca_archive_location, key_path, etag, last_update, size_in_bytes, storage_class)
     SELECT $1::int8, $2::text, format('MOD09GQ___061/MOD09GQ.X%s.B01.hdf', lpad(o::text, 6, '0')),
            '"' || md5('orphan-' || o) || '"', timestamptz '2025-12-31T00:00:00Z' + o * interval '1 second', 2097152 + o, 'GLACIER'
     FROM generate_series(1, $3::int) AS o`,
    [jobId, PRIMARY, Math.floor(files * ORPHANS_PER_FILE)],
  );
  // The secondary listing: its own files but a few (its phantoms), and objects of its own (its orphans).
  const secondaryListing = await tx.query(
    `INSERT INTO ${q}.reconcile_s3_object (job_id, orca_archive_location, key_path, etag, last_update, size_in_bytes, storage_class)
     SELECT $1::int8, f.orca_archive_location, f.key_path, f.etag, f.ingest_time + interval '1 day', f.size_in_bytes, 'DEEP_ARCHIVE'
     FROM ${q}.files f WHERE f.orca_archive_location = $2 AND f.id % 50 <> 3
     UNION ALL
     SELECT $1::int8, $2::text, format('MYD13A1___061/MYD13A1.X%s.B01.hdf', lpad(o::text, 6, '0')),
            '"' || md5('secondary-orphan-' || o) || '"', timestamptz '2025-12-31Z', 4096, 'DEEP_ARCHIVE'
     FROM generate_series(1, 5) AS o`,
    [otherJobId, SECONDARY],
  );
  await tx.query(`UPDATE ${q}.reconcile_job SET status_id = 2, last_update = now() WHERE id IN ($1, $2)`, [jobId, otherJobId]);
  return {
    jobId,
    otherJobId,
    listed: {
      primary: (primaryListing.affectedRows ?? 0) + (orphans.affectedRows ?? 0),
      secondary: secondaryListing.affectedRows ?? 0,
      secondaryFiles,
    },
  };
}
