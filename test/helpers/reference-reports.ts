/**
 * A plain reading of "The three reports" in shared/spec/ORCA-RECONCILE.md: one INSERT ... SELECT
 * per report, each scanning the bucket's catalog and inventory on its own. It is the oracle of the
 * differential test and the baseline of the benchmark, so it is written from the spec alone (not
 * from src/reports.ts) and depends on nothing but a `query(text, values)`.
 *
 * Every statement takes $1 = job id and $2 = orca_archive_location (the bucket).
 * Text comparisons use plain `=` / `IS DISTINCT FROM`: PostgreSQL's default collations are
 * deterministic, so equality is byte-wise as the spec demands, and the joins can use the indexes.
 */

/** Phantom: a catalog file of the bucket whose key has no inventory row in that bucket. */
function phantomSql(s: string): string {
  return `
INSERT INTO ${s}.reconcile_phantom_report
  (job_id, collection_id, granule_id, filename, key_path, orca_etag, orca_last_update, orca_size,
   orca_storage_class_id)
SELECT $1::int8, granule.collection_id, granule.cumulus_granule_id, file.name, file.key_path, file.etag,
       granule.last_update, file.size_in_bytes, file.storage_class_id
FROM ${s}.files AS file
JOIN ${s}.granules AS granule ON granule.id = file.granule_id
LEFT JOIN ${s}.reconcile_s3_object AS object
  ON object.orca_archive_location = $2::text AND object.key_path = file.key_path
WHERE file.orca_archive_location = $2::text
  AND object.key_path IS NULL`;
}

/** Orphan: an inventory row of the bucket whose key has no catalog file in that bucket. */
function orphanSql(s: string): string {
  return `
INSERT INTO ${s}.reconcile_orphan_report (job_id, key_path, etag, last_update, size_in_bytes, storage_class)
SELECT $1::int8, object.key_path, object.etag, object.last_update, object.size_in_bytes, object.storage_class
FROM ${s}.reconcile_s3_object AS object
WHERE object.orca_archive_location = $2::text
  AND NOT EXISTS (
    SELECT 1 FROM ${s}.files AS file
    WHERE file.orca_archive_location = $2::text AND file.key_path = object.key_path
  )`;
}

/**
 * Mismatch: a key in both whose etag, size or storage class differ. The storage class of a file
 * is the `value` of its storage_class row, compared with the inventory's text as is.
 */
function mismatchSql(s: string): string {
  return `
INSERT INTO ${s}.reconcile_catalog_mismatch_report
  (job_id, collection_id, granule_id, filename, key_path, cumulus_archive_location, orca_etag, s3_etag,
   orca_last_update, s3_last_update, orca_size_in_bytes, s3_size_in_bytes, orca_storage_class_id,
   s3_storage_class, discrepancy_type)
SELECT $1::int8, granule.collection_id, granule.cumulus_granule_id, file.name, file.key_path,
       file.cumulus_archive_location, file.etag, object.etag, granule.last_update, object.last_update,
       file.size_in_bytes, object.size_in_bytes, file.storage_class_id, object.storage_class,
       array_to_string(ARRAY[
         CASE WHEN file.etag IS DISTINCT FROM object.etag THEN 'etag' END,
         CASE WHEN file.size_in_bytes IS DISTINCT FROM object.size_in_bytes THEN 'size_in_bytes' END,
         CASE WHEN class.value IS DISTINCT FROM object.storage_class THEN 'storage_class' END
       ], ', ')
FROM ${s}.files AS file
JOIN ${s}.granules AS granule ON granule.id = file.granule_id
JOIN ${s}.storage_class AS class ON class.id = file.storage_class_id
JOIN ${s}.reconcile_s3_object AS object
  ON object.orca_archive_location = $2::text AND object.key_path = file.key_path
WHERE file.orca_archive_location = $2::text
  AND (file.etag IS DISTINCT FROM object.etag
    OR file.size_in_bytes IS DISTINCT FROM object.size_in_bytes
    OR class.value IS DISTINCT FROM object.storage_class)`;
}

/**
 * The phantom, orphan and mismatch INSERT statements, in that order, for a schema name that is
 * already quoted (e.g. `"orca"`). Each takes $1 = job id, $2 = orca_archive_location.
 */
export function referenceReportsSql(quotedSchema: string): string[] {
  return [phantomSql(quotedSchema), orphanSql(quotedSchema), mismatchSql(quotedSchema)];
}

/** Runs one parameterised statement. pg resolves to `{ rowCount }`, PGlite to `{ affectedRows }`. */
export interface ReferenceQueryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

type QueryFunction = (text: string, values?: unknown[]) => Promise<unknown>;

/**
 * What {@link runReferenceReports} accepts: a pg Client, PoolClient or Pool, a PGlite instance, a
 * bare query function bound to one session, or a test harness holding one of these in `db`.
 */
export type ReferenceDatabase = ReferenceQueryable | QueryFunction | { db: ReferenceQueryable };

export interface ReferenceCounts {
  phantoms: number;
  orphans: number;
  mismatches: number;
}

interface PoolLike extends ReferenceQueryable {
  connect(): Promise<ReferenceQueryable & { release(error?: Error | boolean): void }>;
  totalCount: number;
}

interface TransactionRunner extends ReferenceQueryable {
  transaction<T>(callback: (tx: ReferenceQueryable) => Promise<T>): Promise<T>;
}

function affected(result: unknown): number {
  const { rowCount, affectedRows } = (result ?? {}) as { rowCount?: number | null; affectedRows?: number };
  return Number(rowCount ?? affectedRows ?? 0);
}

async function runStatements(
  tx: ReferenceQueryable,
  quotedSchema: string,
  values: unknown[],
): Promise<ReferenceCounts> {
  const [phantoms, orphans, mismatches] = referenceReportsSql(quotedSchema);
  return {
    phantoms: affected(await tx.query(phantoms!, values)),
    orphans: affected(await tx.query(orphans!, values)),
    mismatches: affected(await tx.query(mismatches!, values)),
  };
}

async function inTransaction(
  tx: ReferenceQueryable,
  work: (tx: ReferenceQueryable) => Promise<ReferenceCounts>,
): Promise<ReferenceCounts> {
  await tx.query('BEGIN');
  try {
    const counts = await work(tx);
    await tx.query('COMMIT');
    return counts;
  } catch (error) {
    await tx.query('ROLLBACK');
    throw error;
  }
}

/**
 * Writes the three reports of job `jobId` for bucket `location` in one transaction and returns
 * the number of rows each statement inserted. A pool lends one client for the transaction (a
 * BEGIN sent through `pool.query` could land on another connection); PGlite uses its own
 * transaction method.
 *
 * @example
 * ```ts
 * const counts = await runReferenceReports(pool, '"orca"', 42, 'prefix-orca-primary');
 * ```
 */
export async function runReferenceReports(
  database: ReferenceDatabase,
  quotedSchema: string,
  jobId: number,
  location: string,
): Promise<ReferenceCounts> {
  const values = [jobId, location];
  const work = (tx: ReferenceQueryable) => runStatements(tx, quotedSchema, values);
  if (typeof database === 'function') return inTransaction({ query: database }, work);
  const target: ReferenceQueryable = 'db' in database ? database.db : database;
  if (typeof (target as Partial<TransactionRunner>).transaction === 'function') {
    return (target as TransactionRunner).transaction(work);
  }
  const pool = target as Partial<PoolLike>;
  // A pg Client has connect() too (it would reconnect): only pools count their clients.
  if (typeof pool.connect === 'function' && typeof pool.totalCount === 'number') {
    const client = await pool.connect();
    let failed = false;
    try {
      return await inTransaction(client, work);
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      // After a failure the session may be unusable: let the pool discard it.
      client.release(failed);
    }
  }
  return inTransaction(target, work);
}
