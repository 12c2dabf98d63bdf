/**
 * Loading a generated dataset (see datasets.ts) into an ORCA schema, and comparing report sets
 * as multisets of whole rows: shared by the differential suites.
 */
import type { TestDatabase } from './database.js';
import type { Dataset } from './datasets.js';
import type { StoredReports } from './rows.js';

export const REPORT_TABLES = ['reconcile_phantom_report', 'reconcile_orphan_report', 'reconcile_catalog_mismatch_report'];
// Children before parents: clearing deletes in this order.
const INPUT_TABLES = ['reconcile_s3_object', 'reconcile_job', 'files', 'granules', 'collections', 'providers'];

/** Loads the catalog: providers, collections and granules, then files joined to their granule ids. */
const catalogSql = (s: string) => `
WITH provider AS (
  INSERT INTO ${s}.providers VALUES ('prov', 'Provider') RETURNING 1
), granule_input AS (
  SELECT * FROM jsonb_to_recordset($1::text::jsonb)
    AS g(collection_id text, cumulus_granule_id text, last_update timestamptz)
), collection AS (
  INSERT INTO ${s}.collections SELECT DISTINCT collection_id, collection_id, '1' FROM granule_input RETURNING 1
), granule AS (
  INSERT INTO ${s}.granules
    (provider_id, collection_id, cumulus_granule_id, execution_id, ingest_time, cumulus_create_time, last_update)
  SELECT 'prov', collection_id, cumulus_granule_id, 'exec', '2025-01-01Z', '2025-01-01Z', last_update
  FROM granule_input
  RETURNING id, collection_id, cumulus_granule_id
)
INSERT INTO ${s}.files
  (granule_id, name, orca_archive_location, cumulus_archive_location, key_path, ingest_time, etag, version,
   size_in_bytes, storage_class_id)
SELECT granule.id, f.name, f.bucket, 'cumulus-' || f.bucket, f.key_path, '2025-01-01Z', f.etag, 'v1',
       f.size_in_bytes, f.storage_class_id
FROM jsonb_to_recordset($2::text::jsonb) AS f(bucket text, collection_id text, cumulus_granule_id text,
  name text, key_path text, etag text, size_in_bytes int8, storage_class_id int2)
JOIN granule USING (collection_id, cumulus_granule_id)`;

/** Creates one staged job per bucket, in the dataset's order, and loads each bucket's listing under it. */
const listingSql = (s: string) => `
WITH job AS (
  INSERT INTO ${s}.reconcile_job (orca_archive_location, status_id, inventory_creation_time, start_time, last_update)
  SELECT bucket, 2, '2026-01-01Z', '2026-01-01T01:00Z', '2026-01-01T01:00Z'
  FROM jsonb_array_elements_text($1::text::jsonb) WITH ORDINALITY AS b(bucket, n) ORDER BY n
  RETURNING id, orca_archive_location
), object AS (
  INSERT INTO ${s}.reconcile_s3_object
    (job_id, orca_archive_location, key_path, etag, last_update, size_in_bytes, storage_class)
  SELECT job.id, o.bucket, o.key_path, o.etag, o.last_update, o.size_in_bytes, o.storage_class
  FROM jsonb_to_recordset($2::text::jsonb) AS o(bucket text, key_path text, etag text,
    last_update timestamptz, size_in_bytes int8, storage_class text)
  JOIN job ON job.orca_archive_location = o.bucket
)
SELECT id, orca_archive_location FROM job`;

/** Empties the inputs and reports, then loads `dataset`; returns the job id of each bucket. */
export async function loadDataset(t: TestDatabase, s: string, dataset: Dataset): Promise<Map<string, number>> {
  // DELETE rather than TRUNCATE: on a real server each TRUNCATE of these dozen relations costs
  // ~14 ms (new files per relation), which made ~500 clears the bulk of the run; rows are few.
  await t.exec([...REPORT_TABLES, ...INPUT_TABLES].map((table) => `DELETE FROM ${s}.${table};`).join('\n'));
  await t.query(catalogSql(s), [JSON.stringify(dataset.granules), JSON.stringify(dataset.files)]);
  const jobs = await t.query<{ id: string | number; orca_archive_location: string }>(listingSql(s), [
    JSON.stringify(dataset.buckets),
    JSON.stringify(dataset.inventory),
  ]);
  return new Map(jobs.map((job) => [job.orca_archive_location, Number(job.id)]));
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonical(inner)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Each report as a sorted list of canonical rows, so two reports compare as multisets. */
export function asMultisets(reports: StoredReports): Record<keyof StoredReports, string[]> {
  return {
    phantoms: reports.phantoms.map(canonical).sort(),
    orphans: reports.orphans.map(canonical).sort(),
    mismatches: reports.mismatches.map(canonical).sort(),
  };
}

