/**
 * Rows of the ORCA schema for tests: catalog, inventory and job factories, the one-of-each-report
 * scenario and the report rows it must produce, readers and snapshots of what a run wrote, typed
 * report rows as the library returns them, and a trigger that records every job status written.
 */
import type { ReportKind, ReportRows } from '../../src/index.js';
import { OrcaStatus } from '../../src/index.js';
import { reportColumns } from '../../src/read-report.js';
import type { TestDatabase } from './database.js';
import type { TestQueue } from './sqs.js';

const q = (schema: string): string => `"${schema}"`;

/** Every discrepancy_type value, in the order the spec lists them. */
export const DISCREPANCY_TYPES = [
  'etag',
  'size_in_bytes',
  'storage_class',
  'etag, size_in_bytes',
  'etag, storage_class',
  'size_in_bytes, storage_class',
  'etag, size_in_bytes, storage_class',
] as const;

// --- Catalog, inventory and jobs ---

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

// --- One of each report ---

/** Key paths of the rows {@link seedOneOfEachReport} makes, by the report each one lands in. */
export interface SeededKeys {
  phantom: string;
  orphan: string;
  mismatch: string;
  match: string;
}

/**
 * A catalog and an inventory listing of `bucket` for `jobId` that differ in exactly one phantom,
 * one orphan and one etag mismatch, plus one file that matches and produces nothing.
 */
export async function seedOneOfEachReport(
  t: TestDatabase,
  schema: string,
  jobId: number,
  bucket: string,
): Promise<SeededKeys> {
  const keys: SeededKeys = {
    phantom: `job-${jobId}/only-in-catalog.h5`,
    orphan: `job-${jobId}/only-in-s3.h5`,
    mismatch: `job-${jobId}/etag-differs.h5`,
    match: `job-${jobId}/same.h5`,
  };
  const granule = await insertGranule(t, schema, { collectionId: 'MOD09GQ___061', granuleId: `G-${jobId}` });
  await insertFile(t, schema, { granuleId: granule, bucket, keyPath: keys.phantom });
  await insertFile(t, schema, { granuleId: granule, bucket, keyPath: keys.mismatch, etag: '"catalog"' });
  await insertFile(t, schema, { granuleId: granule, bucket, keyPath: keys.match });
  await insertInventory(t, schema, { jobId, bucket, keyPath: keys.orphan });
  await insertInventory(t, schema, { jobId, bucket, keyPath: keys.mismatch, etag: '"s3"' });
  await insertInventory(t, schema, { jobId, bucket, keyPath: keys.match });
  return keys;
}

/**
 * A staged job of `bucket` with one row of each report to find (see {@link seedOneOfEachReport}),
 * and its message received from `queue`; with the task's `input` and the handler's `event` for it.
 */
export async function stageJob(t: TestDatabase, schema: string, bucket: string, queue: TestQueue) {
  const jobId = await insertJob(t, schema, bucket);
  const keys = await seedOneOfEachReport(t, schema, jobId, bucket);
  const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: bucket });
  const input = { jobId, orcaArchiveLocation: bucket, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle };
  const event = { event: { jobId, orcaArchiveLocation: bucket, messageReceiptHandle: message.receiptHandle } };
  return { jobId, keys, message, input, event };
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
): Promise<StoredReports> {
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

// --- What a run wrote ---

/** A job's report rows as stored, each row as JSON without its job_id. */
export interface StoredReports {
  phantoms: Record<string, unknown>[];
  orphans: Record<string, unknown>[];
  mismatches: Record<string, unknown>[];
}

/** Every column of a job's report rows, as text, in a stable order. */
export async function readReports(t: TestDatabase, schema: string, jobId: number): Promise<StoredReports> {
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

/** Tables a reconciliation run may write, plus the inventory it reads. */
const SNAPSHOT_TABLES = [
  'reconcile_job',
  'reconcile_s3_object',
  'reconcile_phantom_report',
  'reconcile_orphan_report',
  'reconcile_catalog_mismatch_report',
] as const;

/**
 * Every row of the job, inventory and report tables (and of job_status_trail when the schema
 * has one), each as `table <tab> row as JSON text`, timestamps to the microsecond, in a stable
 * order. Two equal snapshots mean nothing in those tables changed, not even a time stamp.
 */
export async function snapshotReconcileTables(t: TestDatabase, schema: string): Promise<string[]> {
  const s = `"${schema}"`;
  const [trail] = await t.query<{ present: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS present`,
    [`${s}.job_status_trail`],
  );
  const tables: string[] = [...SNAPSHOT_TABLES];
  if (trail?.present) tables.push('job_status_trail');
  const selects = tables.map((table) => `SELECT '${table}' || chr(9) || to_jsonb(r)::text AS row FROM ${s}.${table} r`);
  const rows = await t.query<{ row: string }>(`SELECT row FROM (${selects.join('\nUNION ALL\n')}) AS all_rows ORDER BY row COLLATE "C"`);
  return rows.map((r) => r.row);
}

/** Every job row, as JSON text with timestamps to the microsecond, by id. */
export async function snapshotJobs(t: TestDatabase, schema: string): Promise<string[]> {
  const rows = await t.query<{ row: string }>(
    `SELECT to_jsonb(j)::text AS row FROM "${schema}".reconcile_job j ORDER BY id`,
  );
  return rows.map((r) => r.row);
}

// --- Report rows as the library returns them ---

/** The table of each report. */
export const REPORT_TABLE: Record<ReportKind, string> = {
  phantom: 'reconcile_phantom_report',
  orphan: 'reconcile_orphan_report',
  mismatch: 'reconcile_catalog_mismatch_report',
};

/** A report column's key in the library's typed rows: `key_path` is `keyPath`. */
export const camel = (column: string): string => column.replace(/_([a-z0-9])/g, (_m, letter: string) => letter.toUpperCase());

/**
 * The `index`-th row of a report for `jobId`, every column set. Keys are fixed-width ASCII so
 * that code-unit order is the server's order under any collation; sizes pass 2^32, and some pass
 * 2^53 with odd values no JavaScript number can hold, to prove int8 arrives exact; timestamps
 * carry milliseconds.
 */
export function reportRow<K extends ReportKind>(kind: K, jobId: number, index: number): ReportRows[K] {
  const i = BigInt(index);
  const n = String(index).padStart(3, '0');
  const time = (offsetDays: number) => new Date(Date.UTC(2025, 0, 1 + offsetDays, 5, 6, 7, index % 1000));
  // Collections and granules repeat, so the keyset compares all three key columns.
  const collectionId = `C${index % 3}`;
  const granuleId = `G${index % 2}`;
  const keyPath = `dir/${n}.h5`;
  const rows: { [P in ReportKind]: ReportRows[P] } = {
    phantom: {
      jobId: BigInt(jobId),
      collectionId,
      granuleId,
      filename: `${n}.h5`,
      keyPath,
      orcaEtag: `"p${n}"`,
      orcaLastUpdate: time(index),
      orcaSize: 2n ** 53n + 2n * i + 3n,
      orcaStorageClassId: (index % 2) + 1,
    },
    orphan: {
      jobId: BigInt(jobId),
      keyPath,
      etag: `"o${n}"`,
      lastUpdate: time(index),
      sizeInBytes: 2n ** 53n + 2n * i + 1n,
      storageClass: index % 2 === 0 ? 'GLACIER' : 'STANDARD',
    },
    mismatch: {
      jobId: BigInt(jobId),
      collectionId,
      granuleId,
      filename: `${n}.h5`,
      keyPath,
      cumulusArchiveLocation: 'cumulus-bucket',
      orcaEtag: `"c${n}"`,
      s3Etag: `"s${n}"`,
      orcaLastUpdate: time(index),
      s3LastUpdate: time(index + 1),
      orcaSizeInBytes: 2n ** 62n + 2n * i + 1n,
      s3SizeInBytes: i,
      orcaStorageClassId: 1,
      s3StorageClass: 'DEEP_ARCHIVE',
      discrepancyType: 'etag, size_in_bytes, storage_class',
    },
  };
  return rows[kind];
}

/** The order readReport promises: primary key after job_id. */
export function inKeyOrder<K extends ReportKind>(kind: K, rows: ReportRows[K][]): ReportRows[K][] {
  const key = (row: ReportRows[K]) => {
    const r = row as unknown as Record<string, string>;
    return kind === 'orphan' ? [r['keyPath']!] : [r['collectionId']!, r['granuleId']!, r['keyPath']!];
  };
  return [...rows].sort((a, b) => {
    const [ka, kb] = [key(a), key(b)];
    for (let i = 0; i < ka.length; i += 1) {
      if (ka[i]! < kb[i]!) return -1;
      if (ka[i]! > kb[i]!) return 1;
    }
    return 0;
  });
}

export async function insertReportRows<K extends ReportKind>(
  t: TestDatabase,
  schema: string,
  kind: K,
  rows: readonly ReportRows[K][],
): Promise<void> {
  const columns = reportColumns(kind);
  for (const row of rows) {
    const record = row as unknown as Record<string, unknown>;
    await t.query(
      `INSERT INTO "${schema}".${REPORT_TABLE[kind]} (${columns.join(', ')})
       VALUES (${columns.map((_c, i) => `$${i + 1}`).join(', ')})`,
      columns.map((column) => record[camel(column)]),
    );
  }
}

// --- Job status trail ---

/** One committed write to a reconcile_job row, as the trigger saw it. */
export interface StatusTrailEntry {
  status_id: number;
  end_time: Date | null;
  error_message: string | null;
}

/**
 * Adds to the test schema a trigger that copies every committed update of reconcile_job into a
 * side table, so a test sees the statuses a job went through without mocking anything: a write
 * inside a transaction that rolls back leaves no entry, as it leaves no trace for other readers.
 */
export async function installStatusTrail(t: TestDatabase, schema: string): Promise<void> {
  const s = `"${schema}"`;
  await t.exec(`
CREATE TABLE ${s}.job_status_trail (
  seq bigserial PRIMARY KEY,
  job_id int8 NOT NULL,
  status_id int2 NOT NULL,
  end_time timestamptz NULL,
  error_message text NULL
);
CREATE FUNCTION ${s}.record_job_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ${s}.job_status_trail (job_id, status_id, end_time, error_message)
  VALUES (NEW.id, NEW.status_id, NEW.end_time, NEW.error_message);
  RETURN NULL;
END
$$;
CREATE TRIGGER record_job_status AFTER UPDATE ON ${s}.reconcile_job
  FOR EACH ROW EXECUTE FUNCTION ${s}.record_job_status();`);
}

/** The writes recorded for one job, oldest first. */
export async function readStatusTrail(t: TestDatabase, schema: string, jobId: number): Promise<StatusTrailEntry[]> {
  return t.query<StatusTrailEntry>(
    `SELECT status_id, end_time, error_message FROM "${schema}".job_status_trail WHERE job_id = $1 ORDER BY seq`,
    [jobId],
  );
}
