import { StaleInventoryError } from './errors.js';
import type { Database, Queryable } from './database.js';
import { guardedTransaction } from './guard.js';
import type { RetryOptions } from './retry.js';
import type { Logger, SchemaOptions } from './types.js';
import { quoteSchema, validateArchiveLocation, validateDeadline, validateJobId } from './validation.js';

/**
 * Which job's reports to write, and for which archive bucket.
 *
 * @example
 * ```ts
 * import { generateReports, type ReportTarget } from 'orca-reconcile';
 *
 * const target: ReportTarget = { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' };
 * await generateReports(pool, target);
 * ```
 */
export interface ReportTarget {
  /** Id of the `reconcile_job` row the reports belong to. */
  jobId: number;
  /** Name of the ORCA archive bucket whose catalog and inventory are compared. */
  orcaArchiveLocation: string;
}

/**
 * Number of rows written to each report.
 *
 * @example
 * ```ts
 * import { generateReports } from 'orca-reconcile';
 *
 * const { phantoms, orphans, mismatches } = await generateReports(pool, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' });
 * if (phantoms + orphans + mismatches > 0) console.warn('the archive and its catalog disagree');
 * ```
 */
export interface ReportCounts {
  phantoms: number;
  orphans: number;
  mismatches: number;
}

/**
 * Options of {@link generateReports}.
 *
 * @example
 * ```ts
 * import { generateReports } from 'orca-reconcile';
 *
 * await generateReports(pool, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' }, {
 *   schema: 'orca',
 *   retry: { maxRetries: 5, backoffInSeconds: 2 },
 *   logger: console,
 *   deadline: Date.now() + 10 * 60_000, // give up after ten minutes
 * });
 * ```
 */
export interface GenerateReportsOptions extends SchemaOptions {
  /** Backoff for transient database errors. Only transient errors are ever retried. */
  retry?: Omit<RetryOptions, 'shouldRetry' | 'logger' | 'operation' | 'deadline'>;
  logger?: Pick<Logger, 'warn'>;
  /**
   * Epoch milliseconds by which the work must end. Statements and lock waits are cut off at that
   * time, no retry starts after it, and a {@link TimeoutError} is thrown.
   */
  deadline?: number;
}

/**
 * One statement writes all three reports. The catalog files of the bucket and its inventory
 * partition are each read once, by a single FULL JOIN on key_path that keeps only rows that
 * differ; the three INSERTs feed from that small set, and granules are looked up only for the
 * rows that end up in a report. Inventory rows of any other job are kept out of the reports and
 * one of their job ids is returned as `foreign_job_id`, so the caller can refuse the partition.
 *
 * Parameters: $1 job id, $2 bucket, $3 and $4 the storage_class table as parallel arrays of ids
 * and values. Looking a file's class up in those arrays costs less than joining storage_class
 * for every catalog row (about 4% of the statement at a million files).
 */
export function reportsSql(schema: string): string {
  return `
WITH catalog AS (
  SELECT f.granule_id, f.name, f.key_path, f.cumulus_archive_location, f.etag, f.size_in_bytes,
         f.storage_class_id, ($4::text[])[array_position($3::int2[], f.storage_class_id)] AS storage_class
  FROM ${schema}.files f
  WHERE f.orca_archive_location = $2
), inventory AS (
  SELECT job_id, key_path, etag, last_update, size_in_bytes, storage_class
  FROM ${schema}.reconcile_s3_object
  WHERE orca_archive_location = $2
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
  INSERT INTO ${schema}.reconcile_phantom_report
    (job_id, collection_id, granule_id, filename, key_path, orca_etag, orca_last_update, orca_size,
     orca_storage_class_id)
  SELECT $1, g.collection_id, g.cumulus_granule_id, d.name, d.orca_key_path, d.orca_etag, g.last_update,
         d.orca_size, d.orca_storage_class_id
  FROM differences d
  JOIN ${schema}.granules g ON g.id = d.granule_id
  WHERE d.s3_key_path IS NULL
  RETURNING 1
), orphans AS (
  INSERT INTO ${schema}.reconcile_orphan_report
    (job_id, key_path, etag, last_update, size_in_bytes, storage_class)
  SELECT $1, d.s3_key_path, d.s3_etag, d.s3_last_update, d.s3_size, d.s3_storage_class
  FROM differences d
  WHERE d.orca_key_path IS NULL AND d.s3_job_id = $1
  RETURNING 1
), mismatches AS (
  INSERT INTO ${schema}.reconcile_catalog_mismatch_report
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
  JOIN ${schema}.granules g ON g.id = d.granule_id
  WHERE d.orca_key_path IS NOT NULL AND d.s3_key_path IS NOT NULL AND d.s3_job_id = $1
  RETURNING 1
)
SELECT (SELECT count(*) FROM phantoms) AS phantoms,
       (SELECT count(*) FROM orphans) AS orphans,
       (SELECT count(*) FROM mismatches) AS mismatches,
       (SELECT min(s3_job_id) FROM differences WHERE s3_job_id <> $1) AS foreign_job_id`;
}

type Count = number | string | bigint;

/**
 * Replaces the job's reports with fresh ones, inside the caller's transaction (which must hold
 * the job's lock): refuses a partition that holds another job's listing, deletes the job's
 * earlier report rows, then writes the new ones. Readers see the old set or the new set, never
 * a mix.
 */
export async function replaceReports(
  tx: Queryable,
  jobId: number,
  orcaArchiveLocation: string,
  schema: string,
): Promise<ReportCounts> {
  // The loader truncates a partition before loading, so any one row tells whose listing it holds.
  const probe = await tx.query(
    `SELECT job_id FROM ${schema}.reconcile_s3_object WHERE orca_archive_location = $1 LIMIT 1`,
    [orcaArchiveLocation],
  );
  const sample = probe.rows[0] as { job_id: Count } | undefined;
  if (sample && Number(sample.job_id) !== jobId) {
    throw new StaleInventoryError(jobId, Number(sample.job_id), orcaArchiveLocation);
  }

  for (const table of ['reconcile_phantom_report', 'reconcile_orphan_report', 'reconcile_catalog_mismatch_report']) {
    await tx.query(`DELETE FROM ${schema}.${table} WHERE job_id = $1::int8`, [jobId]);
  }
  const classes = await tx.query(
    `SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids, coalesce(array_agg(value ORDER BY id), '{}') AS names
     FROM ${schema}.storage_class`,
  );
  const { ids, names } = classes.rows[0] as { ids: unknown; names: unknown };
  const { rows } = await tx.query(reportsSql(schema), [jobId, orcaArchiveLocation, ids, names]);
  const row = rows[0] as Record<keyof ReportCounts | 'foreign_job_id', Count | null>;
  if (row.foreign_job_id !== null) {
    // A partition mixing listings: the rows written above roll back with the transaction.
    throw new StaleInventoryError(jobId, Number(row.foreign_job_id), orcaArchiveLocation);
  }
  return { phantoms: Number(row.phantoms), orphans: Number(row.orphans), mismatches: Number(row.mismatches) };
}

/**
 * Compares the ORCA catalog with the S3 inventory listing of one archive bucket and writes the
 * phantom, orphan and mismatch reports of a job, all in one transaction. Any reports the job
 * already had are replaced in that same transaction, so running it again is safe. Concurrent
 * calls for one job take turns on a transaction-scoped advisory lock. Transient database errors
 * (lost connection, serialization failure, deadlock, ...) are retried; anything else is thrown
 * at once.
 *
 * Before writing, the same transaction checks that the job exists ({@link JobNotFoundError}),
 * belongs to `orcaArchiveLocation` ({@link LocationMismatchError}), has its listing loaded
 * ({@link InventoryNotLoadedError}) and that the bucket's inventory rows are this job's
 * ({@link StaleInventoryError}). Job statuses are left alone: {@link task} manages them.
 *
 * `database` is a `pg` Pool, Client or PoolClient, or a PGlite instance. It is not closed.
 *
 * @returns the number of rows written to each report.
 * @throws {@link DatabaseError} when a statement fails; {@link TimeoutError} past `deadline`.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { generateReports } from 'orca-reconcile';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const counts = await generateReports(pool, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' });
 * console.log(counts); // { phantoms: 3, orphans: 0, mismatches: 1 }
 * await pool.end();
 * ```
 */
export async function generateReports(
  database: Database,
  target: ReportTarget,
  options: GenerateReportsOptions = {},
): Promise<ReportCounts> {
  const jobId = validateJobId(target?.jobId);
  const orcaArchiveLocation = validateArchiveLocation(target?.orcaArchiveLocation);
  const schema = quoteSchema(options.schema ?? 'orca');
  const deadline = options.deadline === undefined ? undefined : { at: validateDeadline(options.deadline), startedAt: Date.now() };
  return guardedTransaction(
    database,
    { jobId, orcaArchiveLocation, schema, operation: 'generate reports', deadline, retry: options.retry, logger: options.logger },
    (tx) => replaceReports(tx, jobId, orcaArchiveLocation, schema),
  );
}
