import { describe, expect, it } from 'vitest';
import { generateReports } from '../../src/index.js';
import { type TestDatabase, useOrcaSchema } from '../helpers/database.js';
import {
  BUCKETS,
  corpusCoverage,
  type Dataset,
  type ExpectedReports,
  generateDataset,
  NEAR_DUPLICATE_KEYS,
  TRICKY_KEYS,
} from '../helpers/datasets.js';
import { runReferenceReports } from '../helpers/reference-reports.js';
import { readReports, type StoredReports } from '../helpers/rows.js';

const FIRST_SEED = 1;
const DATASETS = Array.from({ length: 240 }, (_, index) => generateDataset(FIRST_SEED + index));

const REPORT_TABLES = ['reconcile_phantom_report', 'reconcile_orphan_report', 'reconcile_catalog_mismatch_report'];
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
async function loadDataset(t: TestDatabase, s: string, dataset: Dataset): Promise<Map<string, number>> {
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
function asMultisets(reports: StoredReports): Record<keyof StoredReports, string[]> {
  return {
    phantoms: reports.phantoms.map(canonical).sort(),
    orphans: reports.orphans.map(canonical).sort(),
    mismatches: reports.mismatches.map(canonical).sort(),
  };
}

/** The identifying part of each report row, in the form the dataset's expectations take. */
function summarise(reports: StoredReports): ExpectedReports {
  const key = (row: Record<string, unknown>) => String(row['key_path']);
  return {
    phantoms: reports.phantoms.map(key).sort(),
    orphans: reports.orphans.map(key).sort(),
    mismatches: reports.mismatches
      .map((row): [string, string] => [key(row), String(row['discrepancy_type'])])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  };
}

async function countAllReportRows(t: TestDatabase, s: string): Promise<number> {
  const [row] = await t.query<{ n: string | number }>(
    `SELECT ${REPORT_TABLES.map((table) => `(SELECT count(*) FROM ${s}.${table})`).join(' + ')} AS n`,
  );
  return Number(row!.n);
}

describe('generateReports agrees with a plain reading of the spec on generated datasets', () => {
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_differential', buckets: BUCKETS });
  const s = `"${schema}"`;

  it('the corpus covers every case the reports distinguish', () => {
    const coverage = corpusCoverage(DATASETS);
    const required = [
      'phantom',
      'orphan',
      'match',
      ...['etag', 'size_in_bytes', 'storage_class', 'etag, size_in_bytes', 'etag, storage_class',
        'size_in_bytes, storage_class', 'etag, size_in_bytes, storage_class'].map((type) => `mismatch: ${type}`),
      'empty catalog',
      'empty listing',
      'both empty',
      'all phantom',
      'all orphan',
      'no files in any bucket',
      'no inventory in any bucket',
      'same key, other fate in another bucket',
      'all near-duplicates in one bucket',
      ...['GLACIER', 'DEEP_ARCHIVE', 'STANDARD', 'glacier'].map((value) => `inventory class ${value}`),
      ...[...NEAR_DUPLICATE_KEYS, ...TRICKY_KEYS].map((key) => `reported key ${JSON.stringify(key)}`),
    ];
    const missing = required.filter((name) => !coverage.has(name));
    expect(missing).toEqual([]);
  });

  it.each(DATASETS.map((dataset) => [dataset.seed, dataset] as const))(
    'seed %i: the same rows as the reference for every bucket as target',
    async (seed, dataset) => {
      for (const bucket of dataset.buckets) {
        const where = `seed ${seed}, target ${bucket} (${dataset.modes[bucket]}), buckets ${dataset.buckets.join(' ')}`;

        // Prepare
        const jobs = await loadDataset(t, s, dataset);
        const jobId = jobs.get(bucket)!;

        // Act
        const counts = await generateReports(t.db, { jobId, orcaArchiveLocation: bucket }, { schema });
        const actual = await readReports(t, schema, jobId);
        const written = await countAllReportRows(t, s);
        for (const table of REPORT_TABLES) await t.query(`DELETE FROM ${s}.${table} WHERE job_id = $1`, [jobId]);
        const referenceCounts = await runReferenceReports(t.db, s, jobId, bucket);
        const reference = await readReports(t, schema, jobId);

        // Assess
        expect(asMultisets(actual), where).toEqual(asMultisets(reference));
        const sizes = { phantoms: actual.phantoms.length, orphans: actual.orphans.length, mismatches: actual.mismatches.length };
        expect(counts, where).toEqual(sizes);
        expect(written, `${where}: rows written under another job id`).toBe(sizes.phantoms + sizes.orphans + sizes.mismatches);
        // The oracle itself is checked against the fates the generator chose.
        expect(referenceCounts, where).toEqual({
          phantoms: reference.phantoms.length,
          orphans: reference.orphans.length,
          mismatches: reference.mismatches.length,
        });
        expect(summarise(reference), where).toEqual(dataset.expected[bucket]);
      }
    },
  );
});
