// Set-based seeding of a benchmark archive: everything is generated inside PostgreSQL with
// generate_series, so seeding 10 million files costs no round trips and no Node memory.
import type pg from 'pg';
import { orcaTablesSql } from '../src/sql/ddl.js';

export const BUCKET = 'bench-orca-primary';
export const OTHER_BUCKET = 'bench-orca-secondary';
const FILES_PER_GRANULE = 10;

/** Rates of each kind of discrepancy, as fractions of the catalog size. */
export interface Rates {
  phantom: number;
  orphan: number;
  etag: number;
  size: number;
  storageClass: number;
}

export interface SeedResult {
  jobId: number;
  otherJobId: number;
  expected: { phantoms: number; orphans: number; mismatches: number };
}

const q = (schema: string): string => `"${schema}"`;

// Each file index i gets a slot in [0, 100000) from a multiplicative hash; consecutive slot ranges
// decide its fate, so the rates are exact over every block of 100000 files.
const SLOT = '((i::int8 * 7919) % 100000)';

function thresholds(rates: Rates) {
  const per = (rate: number) => Math.round(rate * 100_000);
  const phantom = per(rates.phantom);
  const etag = phantom + per(rates.etag);
  const size = etag + per(rates.size);
  const storageClass = size + per(rates.storageClass);
  return { phantom, etag, size, storageClass };
}

function keyPath(bucketIndex: number): string {
  return `format('BENCH___1/%s/%s/BENCH.A%s.h5', ${bucketIndex}, (i - 1) / ${FILES_PER_GRANULE} + 1, lpad(i::text, 10, '0'))`;
}

async function seedBucket(
  client: pg.ClientBase,
  schema: string,
  bucket: string,
  bucketIndex: number,
  jobId: number,
  files: number,
  rates: Rates,
): Promise<SeedResult['expected']> {
  const s = q(schema);
  const granules = Math.ceil(files / FILES_PER_GRANULE);
  const firstGranule = (bucketIndex - 1) * granules;
  const t = thresholds(rates);
  await client.query(
    `INSERT INTO ${s}.granules
       (id, provider_id, collection_id, cumulus_granule_id, execution_id, ingest_time, cumulus_create_time, last_update)
     SELECT $1::int8 + g, 'bench', 'BENCH___1', format('BENCH.%s.G%s', $2::int, g), 'execution',
            '2025-01-01Z', '2025-01-01Z', '2025-06-01Z'
     FROM generate_series(1, $3::int) AS g`,
    [firstGranule, bucketIndex, granules],
  );
  await client.query(
    `INSERT INTO ${s}.files
       (granule_id, name, orca_archive_location, cumulus_archive_location, key_path, ingest_time, etag,
        version, size_in_bytes, storage_class_id)
     SELECT $1::int8 + (i - 1) / ${FILES_PER_GRANULE} + 1, format('BENCH.A%s.h5', lpad(i::text, 10, '0')),
            $2::text, 'cumulus-' || $2::text, ${keyPath(bucketIndex)}, '2025-01-01Z',
            '"' || md5(i::text) || '"', 'v1', 1000 + i % 5000000, (1 + i % 2)::int2
     FROM generate_series(1, $3::int) AS i`,
    [firstGranule, bucket, files],
  );
  // The listing: every catalog file but the phantoms, some of them altered, then the orphans.
  const inventory = await client.query(
    `INSERT INTO ${s}.reconcile_s3_object
       (job_id, orca_archive_location, key_path, etag, last_update, size_in_bytes, storage_class)
     SELECT $1::int8, $2::text, ${keyPath(bucketIndex)},
            CASE WHEN slot >= $4 AND slot < $5 THEN '"' || md5('x' || i::text) || '"' ELSE '"' || md5(i::text) || '"' END,
            '2026-01-01Z',
            1000 + i % 5000000 + CASE WHEN slot >= $5 AND slot < $6 THEN 1 ELSE 0 END,
            CASE WHEN (slot >= $6 AND slot < $7) <> (i % 2 = 0) THEN 'GLACIER' ELSE 'DEEP_ARCHIVE' END
     FROM generate_series(1, $3::int) AS i, LATERAL (SELECT ${SLOT} AS slot) AS fate
     WHERE slot >= $4`,
    [jobId, bucket, files, t.phantom, t.etag, t.size, t.storageClass],
  );
  const orphans = Math.round(files * rates.orphan);
  await client.query(
    `INSERT INTO ${s}.reconcile_s3_object
       (job_id, orca_archive_location, key_path, etag, last_update, size_in_bytes, storage_class)
     SELECT $1::int8, $2::text, format('BENCH___1/orphans/%s/%s.h5', $4::int, lpad(o::text, 10, '0')),
            '"' || md5('o' || o::text) || '"', '2026-01-01Z', o, 'GLACIER'
     FROM generate_series(1, $3::int) AS o`,
    [jobId, bucket, orphans, bucketIndex],
  );
  const phantoms = files - (inventory.rowCount ?? 0);
  const mismatchRows = await client.query(
    `SELECT count(*)::int AS n FROM generate_series(1, $1::int) AS i WHERE ${SLOT} >= $2 AND ${SLOT} < $3`,
    [files, t.phantom, t.storageClass],
  );
  return { phantoms, orphans, mismatches: (mismatchRows.rows[0] as { n: number }).n };
}

/**
 * Creates `schema` with the ORCA tables and seeds two buckets of `files` catalog files each (10 per
 * granule) with their listings; the second bucket's rows must never reach the first's reports.
 */
export async function seed(pool: pg.Pool, schema: string, files: number, rates: Rates): Promise<SeedResult> {
  const s = q(schema);
  const client = await pool.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await client.query(orcaTablesSql(schema, [BUCKET, OTHER_BUCKET]));
    await client.query(`INSERT INTO ${s}.providers VALUES ('bench', 'Benchmark provider')`);
    await client.query(`INSERT INTO ${s}.collections VALUES ('BENCH___1', 'BENCH', '1')`);
    const jobs = await client.query(
      `INSERT INTO ${s}.reconcile_job (orca_archive_location, status_id, inventory_creation_time, start_time, last_update)
       VALUES ($1, 2, now(), now(), now()), ($2, 2, now(), now(), now()) RETURNING id`,
      [BUCKET, OTHER_BUCKET],
    );
    const [jobId, otherJobId] = jobs.rows.map((row: { id: string }) => Number(row.id)) as [number, number];
    const expected = await seedBucket(client, schema, BUCKET, 1, jobId, files, rates);
    await seedBucket(client, schema, OTHER_BUCKET, 2, otherJobId, files, rates);
    await client.query(`VACUUM ANALYZE ${s}.granules, ${s}.files, ${s}.reconcile_s3_object, ${s}.storage_class`);
    return { jobId, otherJobId, expected };
  } finally {
    client.release();
  }
}
