import type { QuotedSchema } from './schema.js';

/**
 * Name of one of the three reports: `phantom`, `orphan` or `mismatch`.
 *
 * @example
 * ```ts
 * import { readReportPage, type ReportKind } from 'orca-reconcile';
 *
 * for (const kind of ['phantom', 'orphan', 'mismatch'] as const satisfies readonly ReportKind[]) {
 *   const { rows } = await readReportPage(pool, { jobId: 42, kind }, { pageSize: 10 });
 *   console.log(kind, rows.length);
 * }
 * ```
 * @category Reports
 */
export type ReportKind = 'phantom' | 'orphan' | 'mismatch';

/** Where a report is stored and how it is read. */
export interface ReportTable {
  table: string;
  /** Primary key after job_id: the order rows are read in, and the keyset of a page cursor. */
  key: readonly string[];
  /** Every column, in table order. */
  columns: readonly string[];
}

/** The report tables: the one place besides the DDL that names them. */
export const REPORT_TABLES: Readonly<Record<ReportKind, ReportTable>> = {
  phantom: {
    table: 'reconcile_phantom_report',
    key: ['collection_id', 'granule_id', 'key_path'],
    columns: ['job_id', 'collection_id', 'granule_id', 'filename', 'key_path', 'orca_etag', 'orca_last_update',
      'orca_size', 'orca_storage_class_id'],
  },
  orphan: {
    table: 'reconcile_orphan_report',
    key: ['key_path'],
    columns: ['job_id', 'key_path', 'etag', 'last_update', 'size_in_bytes', 'storage_class'],
  },
  mismatch: {
    table: 'reconcile_catalog_mismatch_report',
    key: ['collection_id', 'granule_id', 'key_path'],
    columns: ['job_id', 'collection_id', 'granule_id', 'filename', 'key_path', 'cumulus_archive_location', 'orca_etag',
      's3_etag', 'orca_last_update', 's3_last_update', 'orca_size_in_bytes', 's3_size_in_bytes',
      'orca_storage_class_id', 's3_storage_class', 'discrepancy_type'],
  },
};

export const REPORT_KINDS = Object.keys(REPORT_TABLES) as ReportKind[];

/**
 * Three columns, `phantoms`, `orphans` and `mismatches`, counting the report rows of the job
 * `jobId` (an SQL expression: a parameter, or a column of an outer query). Each count is an index
 * range scan: every report's primary key leads with job_id.
 */
export function reportCountColumns(s: QuotedSchema, jobId: string): string {
  return `(SELECT count(*) FROM ${s}.${REPORT_TABLES.phantom.table} r WHERE r.job_id = ${jobId}) AS phantoms,
       (SELECT count(*) FROM ${s}.${REPORT_TABLES.orphan.table} r WHERE r.job_id = ${jobId}) AS orphans,
       (SELECT count(*) FROM ${s}.${REPORT_TABLES.mismatch.table} r WHERE r.job_id = ${jobId}) AS mismatches`;
}

/** Row counts of a job's stored reports. $1: job id. */
export const reportCountsSql = (s: QuotedSchema): string => `SELECT ${reportCountColumns(s, '$1::int8')}`;

/** Mismatch rows of a job per discrepancy_type. $1: job id. */
export const mismatchTypeCountsSql = (s: QuotedSchema): string =>
  `SELECT discrepancy_type, count(*)::int AS n FROM ${s}.${REPORT_TABLES.mismatch.table} WHERE job_id = $1::int8 GROUP BY 1`;

/** Deletes a job's rows from one report. $1: job id. */
export const deleteReportSql = (s: QuotedSchema, kind: ReportKind): string =>
  `DELETE FROM ${s}.${REPORT_TABLES[kind].table} WHERE job_id = $1::int8`;

/**
 * The job id of any one inventory row of a bucket. The loader truncates a partition before
 * loading, so one row tells whose listing it holds. $1: bucket.
 */
export const inventorySampleSql = (s: QuotedSchema): string =>
  `SELECT job_id FROM ${s}.reconcile_s3_object WHERE orca_archive_location = $1 LIMIT 1`;

/** The storage_class table as two parallel arrays, ordered by id: `ids` and `names`. */
export const storageClassArraysSql = (s: QuotedSchema): string =>
  `SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids, coalesce(array_agg(value ORDER BY id), '{}') AS names
   FROM ${s}.storage_class`;

/**
 * Where the report statement reads and writes. `catalog` and `inventory` are SELECTs with the
 * columns {@link writeReportsSql} uses; `into` names each report's table; `extraColumns` adds
 * columns to the statement's one result row.
 */
export interface ReportSources {
  catalog: string;
  inventory: string;
  into: (kind: ReportKind) => string;
  /**
   * How report rows get their granule: `join` lets the planner choose (with statistics, a hash
   * join of granules is cheapest for a whole bucket's differences); `lookup` fetches each
   * difference's granule by its primary key, so the work stays bounded by the differences, for
   * inputs without statistics (a piece), where the planner would read all of granules.
   */
  granules?: 'join' | 'lookup';
}

/**
 * A bucket's catalog files and its inventory partition, written to the job's reports.
 * Parameters: $2 bucket, $3 and $4 the storage_class table as parallel arrays of ids and values.
 * Looking a file's class up in those arrays costs less than joining storage_class for every
 * catalog row (about 4% of the statement at a million files).
 */
export function bucketSources(s: QuotedSchema): ReportSources {
  return {
    catalog: `SELECT f.granule_id, f.name, f.key_path, f.cumulus_archive_location, f.etag, f.size_in_bytes,
         f.storage_class_id, ($4::text[])[array_position($3::int2[], f.storage_class_id)] AS storage_class
  FROM ${s}.files f
  WHERE f.orca_archive_location = $2`,
    inventory: `SELECT job_id, key_path, etag, last_update, size_in_bytes, storage_class
  FROM ${s}.reconcile_s3_object
  WHERE orca_archive_location = $2`,
    into: (kind) => `${s}.${REPORT_TABLES[kind].table}`,
  };
}

/**
 * One statement writes all three reports. The catalog files and the inventory rows are each read
 * once, by a single FULL JOIN on key_path that keeps only rows that differ; the three INSERTs
 * feed from that small set, and granules are looked up only for the rows that end up in a
 * report. Inventory rows of any other job are kept out of the reports and one of their job ids is
 * returned as `foreign_job_id`, so the caller can refuse the partition.
 *
 * $1 is the job id; the sources bring their own parameters (see {@link bucketSources}).
 */
export function writeReportsSql(s: QuotedSchema, sources: ReportSources = bucketSources(s)): string {
  // OFFSET 0 keeps the subquery from being flattened into a join: one index lookup per row.
  const granule = (d: string) =>
    sources.granules === 'lookup'
      ? `CROSS JOIN LATERAL (SELECT collection_id, cumulus_granule_id, last_update FROM ${s}.granules WHERE id = ${d}.granule_id OFFSET 0) g`
      : `JOIN ${s}.granules g ON g.id = ${d}.granule_id`;
  return `
WITH catalog AS (
  ${sources.catalog}
), inventory AS (
  ${sources.inventory}
), differences AS MATERIALIZED (
  SELECT c.granule_id, c.name, c.key_path AS orca_key_path, c.cumulus_archive_location,
         c.etag AS orca_etag, c.size_in_bytes AS orca_size, c.storage_class_id AS orca_storage_class_id,
         c.storage_class AS orca_storage_class,
         i.key_path AS s3_key_path, i.etag AS s3_etag, i.last_update AS s3_last_update,
         i.size_in_bytes AS s3_size, i.storage_class AS s3_storage_class, i.job_id AS s3_job_id
  FROM catalog c
  FULL JOIN inventory i ON i.key_path = c.key_path
  WHERE c.key_path IS NULL OR i.key_path IS NULL
     OR c.etag <> i.etag OR c.size_in_bytes <> i.size_in_bytes OR c.storage_class <> i.storage_class
     OR i.job_id <> $1
), phantoms AS (
  INSERT INTO ${sources.into('phantom')}
    (job_id, collection_id, granule_id, filename, key_path, orca_etag, orca_last_update, orca_size,
     orca_storage_class_id)
  SELECT $1, g.collection_id, g.cumulus_granule_id, d.name, d.orca_key_path, d.orca_etag, g.last_update,
         d.orca_size, d.orca_storage_class_id
  FROM differences d
  ${granule('d')}
  WHERE d.s3_key_path IS NULL
  RETURNING 1
), orphans AS (
  INSERT INTO ${sources.into('orphan')}
    (job_id, key_path, etag, last_update, size_in_bytes, storage_class)
  SELECT $1, d.s3_key_path, d.s3_etag, d.s3_last_update, d.s3_size, d.s3_storage_class
  FROM differences d
  WHERE d.orca_key_path IS NULL AND d.s3_job_id = $1
  RETURNING 1
), mismatches AS (
  INSERT INTO ${sources.into('mismatch')}
    (job_id, collection_id, granule_id, filename, key_path, cumulus_archive_location, orca_etag, s3_etag,
     orca_last_update, s3_last_update, orca_size_in_bytes, s3_size_in_bytes, orca_storage_class_id,
     s3_storage_class, discrepancy_type)
  SELECT $1, g.collection_id, g.cumulus_granule_id, d.name, d.orca_key_path, d.cumulus_archive_location,
         d.orca_etag, d.s3_etag, g.last_update, d.s3_last_update, d.orca_size, d.s3_size,
         d.orca_storage_class_id, d.s3_storage_class,
         concat_ws(', ',
           CASE WHEN d.orca_etag <> d.s3_etag THEN 'etag' END,
           CASE WHEN d.orca_size <> d.s3_size THEN 'size_in_bytes' END,
           CASE WHEN d.orca_storage_class <> d.s3_storage_class THEN 'storage_class' END)
  FROM differences d
  ${granule('d')}
  WHERE d.orca_key_path IS NOT NULL AND d.s3_key_path IS NOT NULL AND d.s3_job_id = $1
  RETURNING 1
)
SELECT (SELECT count(*) FROM phantoms) AS phantoms,
       (SELECT count(*) FROM orphans) AS orphans,
       (SELECT count(*) FROM mismatches) AS mismatches,
       (SELECT min(s3_job_id) FROM differences WHERE s3_job_id <> $1) AS foreign_job_id`;
}

/**
 * Opens a server-side cursor over a job's report in primary-key order. `cursor` is a name the
 * caller made (letters, digits and `_` only). $1: job id.
 */
export function declareReportCursorSql(s: QuotedSchema, kind: ReportKind, cursor: string): string {
  const { table, key, columns } = REPORT_TABLES[kind];
  return `DECLARE ${cursor} NO SCROLL CURSOR FOR
    SELECT ${columns.join(', ')} FROM ${s}.${table} WHERE job_id = $1::int8 ORDER BY ${key.join(', ')}`;
}

export const fetchCursorSql = (cursor: string, rows: number): string => `FETCH FORWARD ${rows} FROM ${cursor}`;
export const closeCursorSql = (cursor: string): string => `CLOSE ${cursor}`;

/**
 * One page of a job's report in primary-key order. $1: job id, $2: rows to read; with `after`,
 * $3 onwards are the key of the previous page's last row, and the page starts after it.
 */
export function reportPageSql(s: QuotedSchema, kind: ReportKind, after: boolean): string {
  const { table, key, columns } = REPORT_TABLES[kind];
  const keyset = after ? ` AND (${key.join(', ')}) > (${key.map((_column, index) => `$${index + 3}`).join(', ')})` : '';
  return `SELECT ${columns.join(', ')} FROM ${s}.${table}
    WHERE job_id = $1::int8${keyset} ORDER BY ${key.join(', ')} LIMIT $2`;
}
