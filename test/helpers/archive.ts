/**
 * A staged job over a generated archive of any size, made inside the database with
 * generate_series: for the pieced-run tests, which need more files than the row factories make
 * comfortably. File i's fate comes from i mod 50: 0 phantom, 1 orphan, 2 etag, 3 size, 4 storage
 * class mismatch, else a match.
 */
import type { TestDatabase } from './database.js';
import { insertJob } from './rows.js';

/** Reports an archive of `files` files gets: per 50 files, one phantom, one orphan, three mismatches. */
export function archiveCounts(files: number): { phantoms: number; orphans: number; mismatches: number } {
  const count = (fate: number) => Math.floor((files - 1 - fate) / 50) + 1;
  return { phantoms: count(0), orphans: count(1), mismatches: count(2) + count(3) + count(4) };
}

/** Seeds a catalog and listing of `files` keys for a new staged job of `bucket`; returns the job id. */
export async function seedArchive(t: TestDatabase, schema: string, bucket: string, files: number): Promise<number> {
  const s = `"${schema}"`;
  const jobId = await insertJob(t, schema, bucket);
  await t.query(`INSERT INTO ${s}.providers VALUES ('prov', 'Provider') ON CONFLICT DO NOTHING`);
  await t.query(`INSERT INTO ${s}.collections VALUES ('ARCHIVE___1', 'ARCHIVE', '1') ON CONFLICT DO NOTHING`);
  const [granule] = await t.query<{ id: string }>(
    `INSERT INTO ${s}.granules (provider_id, collection_id, cumulus_granule_id, execution_id, ingest_time, cumulus_create_time, last_update)
     VALUES ('prov', 'ARCHIVE___1', $1, 'exec', '2025-01-01Z', '2025-01-01Z', '2025-06-01Z') RETURNING id`,
    [`G-${bucket}-${jobId}`],
  );
  const key = `format('job-${jobId}/dir-%s/file-%s.h5', i % 7, i)`;
  await t.query(
    `INSERT INTO ${s}.files (granule_id, name, orca_archive_location, cumulus_archive_location, key_path, ingest_time, etag,
       version, size_in_bytes, storage_class_id)
     SELECT $1::int8, format('file-%s.h5', i), $2, 'cumulus-' || $2, ${key}, '2025-01-01Z', '"e' || i || '"', 'v1', 1000 + i,
            CASE WHEN i % 3 = 0 THEN 2 ELSE 1 END
     FROM generate_series(0, $3::int - 1) i WHERE i % 50 <> 1`,
    [granule!.id, bucket, files],
  );
  await t.query(
    `INSERT INTO ${s}.reconcile_s3_object (job_id, orca_archive_location, key_path, etag, last_update, size_in_bytes, storage_class)
     SELECT $1::int8, $2, ${key},
            CASE WHEN i % 50 = 2 THEN '"changed"' ELSE '"e' || i || '"' END,
            '2026-01-01T00:30:00Z', CASE WHEN i % 50 = 3 THEN 1 ELSE 1000 + i END,
            CASE WHEN (i % 50 = 4) = (i % 3 = 0) THEN 'GLACIER' ELSE 'DEEP_ARCHIVE' END
     FROM generate_series(0, $3::int - 1) i WHERE i % 50 <> 0`,
    [jobId, bucket, files],
  );
  return jobId;
}
