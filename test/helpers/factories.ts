import { OrcaStatus } from '../../src/status.js';
import type { TestDatabase } from './database.js';

const q = (schema: string): string => `"${schema}"`;

export interface JobRow {
  id: number;
  orca_archive_location: string;
  status_id: number;
  last_update: Date;
  end_time: Date | null;
  error_message: string | null;
}

/** Inserts a reconcile_job row (staged by default) and returns its id. */
export async function insertJob(
  t: TestDatabase,
  schema: string,
  bucket: string,
  status: OrcaStatus = OrcaStatus.Staged,
): Promise<number> {
  const [row] = await t.query<{ id: string | number }>(
    `INSERT INTO ${q(schema)}.reconcile_job
       (orca_archive_location, status_id, inventory_creation_time, start_time, last_update)
     VALUES ($1, $2, '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z', '2026-01-01T01:00:00Z')
     RETURNING id`,
    [bucket, status],
  );
  return Number(row!.id);
}

export async function readJob(t: TestDatabase, schema: string, jobId: number): Promise<JobRow> {
  const [row] = await t.query<JobRow>(
    `SELECT id::int AS id, orca_archive_location, status_id, last_update, end_time, error_message
     FROM ${q(schema)}.reconcile_job WHERE id = $1`,
    [jobId],
  );
  if (!row) throw new Error(`test fixture: job ${jobId} missing`);
  return row;
}

export interface GranuleSeed {
  collectionId: string;
  granuleId: string;
  lastUpdate?: string;
}

/** Inserts a granule (and its provider and collection when missing); returns granules.id. */
export async function insertGranule(t: TestDatabase, schema: string, seed: GranuleSeed): Promise<number> {
  await t.query(`INSERT INTO ${q(schema)}.providers VALUES ('prov', 'Provider') ON CONFLICT DO NOTHING`);
  await t.query(
    `INSERT INTO ${q(schema)}.collections VALUES ($1, $1, '1') ON CONFLICT DO NOTHING`,
    [seed.collectionId],
  );
  const [row] = await t.query<{ id: string | number }>(
    `INSERT INTO ${q(schema)}.granules
       (provider_id, collection_id, cumulus_granule_id, execution_id, ingest_time, cumulus_create_time, last_update)
     VALUES ('prov', $1, $2, 'exec', '2025-01-01Z', '2025-01-01Z', $3) RETURNING id`,
    [seed.collectionId, seed.granuleId, seed.lastUpdate ?? '2025-06-01T12:00:00Z'],
  );
  return Number(row!.id);
}

export interface FileSeed {
  granuleId: number;
  bucket: string;
  keyPath: string;
  name?: string;
  etag?: string;
  size?: number;
  storageClassId?: 1 | 2;
}

export async function insertFile(t: TestDatabase, schema: string, seed: FileSeed): Promise<void> {
  await t.query(
    `INSERT INTO ${q(schema)}.files
       (granule_id, name, orca_archive_location, cumulus_archive_location, key_path, ingest_time, etag,
        version, size_in_bytes, storage_class_id)
     VALUES ($1, $2, $3, $4, $5, '2025-01-01Z', $6, 'v1', $7, $8)`,
    [
      seed.granuleId,
      seed.name ?? seed.keyPath.split('/').pop(),
      seed.bucket,
      `cumulus-${seed.bucket}`,
      seed.keyPath,
      seed.etag ?? '"etag-1"',
      seed.size ?? 100,
      seed.storageClassId ?? 1,
    ],
  );
}

export interface InventorySeed {
  jobId: number;
  bucket: string;
  keyPath: string;
  etag?: string;
  size?: number;
  storageClass?: string;
  lastUpdate?: string;
}

export async function insertInventory(t: TestDatabase, schema: string, seed: InventorySeed): Promise<void> {
  await t.query(
    `INSERT INTO ${q(schema)}.reconcile_s3_object
       (job_id, orca_archive_location, key_path, etag, last_update, size_in_bytes, storage_class)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      seed.jobId,
      seed.bucket,
      seed.keyPath,
      seed.etag ?? '"etag-1"',
      seed.lastUpdate ?? '2026-01-01T00:30:00Z',
      seed.size ?? 100,
      seed.storageClass ?? 'GLACIER',
    ],
  );
}

export interface ReportRows {
  phantoms: Record<string, unknown>[];
  orphans: Record<string, unknown>[];
  mismatches: Record<string, unknown>[];
}

/** Every column of a job's report rows, as text, in a stable order. */
export async function readReports(t: TestDatabase, schema: string, jobId: number): Promise<ReportRows> {
  const read = (table: string) =>
    t.query<Record<string, unknown>>(
      `SELECT to_jsonb(r) - 'job_id' AS row FROM ${q(schema)}.${table} r WHERE job_id = $1 ORDER BY key_path COLLATE "C", to_jsonb(r)::text COLLATE "C"`,
      [jobId],
    ).then((rows) => rows.map((r) => r['row'] as Record<string, unknown>));
  return {
    phantoms: await read('reconcile_phantom_report'),
    orphans: await read('reconcile_orphan_report'),
    mismatches: await read('reconcile_catalog_mismatch_report'),
  };
}
