import { REPORT_KINDS, REPORT_TABLES, type ReportKind, type ReportSources } from './reports.js';
import type { QuotedSchema } from './schema.js';

/**
 * Statements of a pieced run. A run copies the bucket's catalog and listing once into unlogged
 * staging tables, each LIST-partitioned by piece (a hash of key_path), so every piece reads only
 * its own two partitions. Pieces write their report rows into staging report tables; the finish
 * moves them into the job's reports in one transaction. Two logged tables record the runs and
 * their finished pieces: the library's own, beside ORCA's, never one of ORCA's.
 */

export const RUN_TABLE = 'orca_reconcile_run';
export const PIECE_TABLE = 'orca_reconcile_piece';

/** The most pieces one run may have: every piece is two partitions, all locked by the copy. */
export const MAX_PIECES = 1024;

/** The progress tables, idempotent (IF NOT EXISTS), one statement per entry. */
export function progressTablesStatements(s: QuotedSchema): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${s}.${RUN_TABLE} (
  id bigserial PRIMARY KEY,
  job_id int8 NOT NULL,
  orca_archive_location text NOT NULL,
  pieces int4 NOT NULL CHECK (pieces BETWEEN 1 AND ${MAX_PIECES}),
  server_started_at timestamptz NOT NULL,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  catalog_files int8 NULL,
  listing_files int8 NULL,
  finished_at timestamptz NULL,
  discarded_at timestamptz NULL,
  phantoms int8 NULL,
  orphans int8 NULL,
  mismatches int8 NULL
)`,
    `CREATE INDEX IF NOT EXISTS ${RUN_TABLE}_job_id ON ${s}.${RUN_TABLE} (job_id, id)`,
    `CREATE TABLE IF NOT EXISTS ${s}.${PIECE_TABLE} (
  run_id int8 NOT NULL REFERENCES ${s}.${RUN_TABLE} (id) ON DELETE CASCADE,
  piece int4 NOT NULL,
  phantoms int8 NOT NULL,
  orphans int8 NOT NULL,
  mismatches int8 NOT NULL,
  duration_ms int8 NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (run_id, piece)
)`,
  ];
}

/** The progress tables' DDL as one script, as the `schema` command prints it. */
export const progressTablesSql = (s: QuotedSchema): string => `${progressTablesStatements(s).join(';\n')};\n`;

/** Names of a run's staging tables. */
export function stagingNames(runId: number) {
  const base = `orca_reconcile_${runId}`;
  return {
    catalog: `${base}_catalog`,
    listing: `${base}_listing`,
    report: (kind: ReportKind) => `${base}_${kind}`,
    part: (side: 'catalog' | 'listing', piece: number) => `${base}_${side}_${piece}`,
  };
}

// Statements per transaction when a finished run's many partitions are dropped, which keeps the
// locks held at once well under the size of the server's lock table.
const BATCH = 64;

function batches(statements: string[]): string[][] {
  const out: string[][] = [];
  for (let index = 0; index < statements.length; index += BATCH) out.push(statements.slice(index, index + BATCH));
  return out;
}

/** Creates a run's staging tables, one statement per entry. */
export function createStagingStatements(s: QuotedSchema, runId: number, pieces: number): string[] {
  const names = stagingNames(runId);
  const statements = [
    // A partitioned table has no storage of its own (and PostgreSQL 17 refuses UNLOGGED on one):
    // its partitions are the unlogged tables.
    `CREATE TABLE ${s}.${names.catalog} (piece int4 NOT NULL, granule_id int8 NOT NULL, name text NOT NULL,
  key_path text NOT NULL, cumulus_archive_location text NOT NULL, etag text NOT NULL, size_in_bytes int8 NOT NULL,
  storage_class_id int2 NOT NULL) PARTITION BY LIST (piece)`,
    `CREATE TABLE ${s}.${names.listing} (piece int4 NOT NULL, job_id int8 NOT NULL, key_path text NOT NULL,
  etag text NOT NULL, last_update timestamptz NOT NULL, size_in_bytes int8 NOT NULL, storage_class text NOT NULL)
  PARTITION BY LIST (piece)`,
    ...REPORT_KINDS.map((kind) => `CREATE UNLOGGED TABLE ${s}.${names.report(kind)} (LIKE ${s}.${REPORT_TABLES[kind].table})`),
  ];
  for (let piece = 1; piece <= pieces; piece += 1) {
    for (const side of ['catalog', 'listing'] as const) {
      statements.push(`CREATE UNLOGGED TABLE ${s}.${names.part(side, piece)} PARTITION OF ${s}.${names[side]} FOR VALUES IN (${piece})`);
    }
  }
  return statements;
}

/** Drops every staging table of a run id at once (a partitioned table takes its partitions with it). */
export function dropOrphanStagingSql(s: QuotedSchema, runId: number): string {
  const names = stagingNames(runId);
  const tables = [names.catalog, names.listing, ...REPORT_KINDS.map((kind) => names.report(kind))];
  return `DROP TABLE IF EXISTS ${tables.map((name) => `${s}.${name}`).join(', ')}`;
}

/**
 * Drops a run's staging tables, partitions first, in batches of statements to run one
 * transaction each; missing tables are skipped.
 */
export function dropStagingBatches(s: QuotedSchema, runId: number, pieces: number): string[][] {
  const names = stagingNames(runId);
  const statements: string[] = [];
  for (let piece = 1; piece <= pieces; piece += 1) {
    statements.push(`DROP TABLE IF EXISTS ${s}.${names.part('catalog', piece)}, ${s}.${names.part('listing', piece)}`);
  }
  statements.push(
    `DROP TABLE IF EXISTS ${s}.${names.catalog}, ${s}.${names.listing}, ${REPORT_KINDS.map((kind) => `${s}.${names.report(kind)}`).join(', ')}`,
  );
  return batches(statements);
}

/**
 * The piece of a key: 1 to `pieces`, from PostgreSQL's hash of the text. The hash is an int4;
 * shifting it to 0 .. 2^32-1 avoids abs(), which overflows on -2^31.
 */
const pieceOf = (pieces: number): string => `((hashtext(key_path)::int8 + 2147483648) % ${pieces} + 1)::int4`;

/** Copies the bucket's catalog into the run's staging partitions in one pass. $1: bucket. */
export const copyCatalogSql = (s: QuotedSchema, runId: number, pieces: number): string =>
  `INSERT INTO ${s}.${stagingNames(runId).catalog}
   SELECT ${pieceOf(pieces)}, granule_id, name, key_path, cumulus_archive_location, etag, size_in_bytes, storage_class_id
   FROM ${s}.files WHERE orca_archive_location = $1`;

/** Copies the bucket's inventory partition into the run's staging partitions. $1: bucket. */
export const copyListingSql = (s: QuotedSchema, runId: number, pieces: number): string =>
  `INSERT INTO ${s}.${stagingNames(runId).listing}
   SELECT ${pieceOf(pieces)}, job_id, key_path, etag, last_update, size_in_bytes, storage_class
   FROM ${s}.reconcile_s3_object WHERE orca_archive_location = $1`;

/** Empties one side's staging partitions, before a copy that an earlier attempt began. */
export const truncateSideSql = (s: QuotedSchema, runId: number, side: 'catalog' | 'listing'): string =>
  `TRUNCATE ${s}.${stagingNames(runId)[side]}`;

/** A snapshot other transactions can import with SET TRANSACTION SNAPSHOT. */
export const EXPORT_SNAPSHOT_SQL = 'SELECT pg_export_snapshot() AS snapshot';

/** Blocks of a relation. $1: its qualified name, as text for `to_regclass`. */
export const sideBlocksSql = `SELECT coalesce(pg_relation_size(to_regclass($1)) / current_setting('block_size')::int8, 0) AS blocks`;

/**
 * One block range of a side's copy: the copy statement limited to tuples from block $2 (a tid,
 * `(n,0)`) on, and before block $3 when `bounded`. PostgreSQL 14 and later read just those blocks
 * (a TID range scan). $1: bucket.
 */
export function copyChunkSql(s: QuotedSchema, runId: number, pieces: number, side: 'catalog' | 'listing', bounded: boolean): string {
  const copy = side === 'catalog' ? copyCatalogSql(s, runId, pieces) : copyListingSql(s, runId, pieces);
  return `${copy} AND ctid >= $2::tid${bounded ? ' AND ctid < $3::tid' : ''}`;
}

/**
 * Where one piece's report statement reads and writes: its two staging partitions, and the run's
 * staging report tables. Parameters: $1 job id, $2 and $3 the storage_class table as parallel
 * arrays of ids and values.
 */
export function pieceSources(s: QuotedSchema, runId: number, piece: number): ReportSources {
  const names = stagingNames(runId);
  return {
    catalog: `SELECT f.granule_id, f.name, f.key_path, f.cumulus_archive_location, f.etag, f.size_in_bytes,
         f.storage_class_id, ($3::text[])[array_position($2::int2[], f.storage_class_id)] AS storage_class
  FROM ${s}.${names.part('catalog', piece)} f`,
    inventory: `SELECT job_id, key_path, etag, last_update, size_in_bytes, storage_class
  FROM ${s}.${names.part('listing', piece)}`,
    into: (kind) => `${s}.${names.report(kind)}`,
    granules: 'lookup',
  };
}

/**
 * A hash join for every piece: the staging tables have no statistics, and without them the
 * planner picks plans that sort or spill. 64 MB holds the hash table of a piece of the size
 * 'auto' chooses. Merge joins are off; nested loops stay on for the granule lookups. JIT is off:
 * the estimates of tables without statistics are huge, and compiling the plan took longer than
 * running it (about 0.9 s a piece).
 */
export const PIECE_SETTINGS_SQL =
  "SELECT set_config('work_mem', '64MB', true), set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)";

/**
 * Moves a run's staged report rows into the job's reports, one statement; returns the three
 * counts. The caller has deleted the job's earlier rows in the same transaction.
 */
export function moveStagedReportsSql(s: QuotedSchema, runId: number): string {
  const names = stagingNames(runId);
  const moves = REPORT_KINDS.map((kind) => {
    const columns = REPORT_TABLES[kind].columns.join(', ');
    return `${kind}_rows AS (INSERT INTO ${s}.${REPORT_TABLES[kind].table} (${columns})
  SELECT ${columns} FROM ${s}.${names.report(kind)} RETURNING 1)`;
  });
  return `WITH ${moves.join(',\n')}
SELECT (SELECT count(*) FROM phantom_rows) AS phantoms, (SELECT count(*) FROM orphan_rows) AS orphans,
       (SELECT count(*) FROM mismatch_rows) AS mismatches`;
}

/** Makes a run, returns its id. $1 job id, $2 bucket, $3 pieces. */
export const insertRunSql = (s: QuotedSchema): string =>
  `INSERT INTO ${s}.${RUN_TABLE} (job_id, orca_archive_location, pieces, server_started_at)
   VALUES ($1::int8, $2, $3::int4, pg_postmaster_start_time()) RETURNING id`;

const runColumns = (s: QuotedSchema): string =>
  `r.id, r.job_id, r.orca_archive_location, r.pieces, r.catalog_files, r.listing_files, r.finished_at,
   r.discarded_at, r.phantoms, r.orphans, r.mismatches, r.server_started_at <> pg_postmaster_start_time() AS restarted,
   to_regclass('${s}.' || quote_ident('orca_reconcile_' || r.id || '_catalog')) IS NULL AS staging_missing,
   (SELECT count(*) FROM ${s}.${PIECE_TABLE} p WHERE p.run_id = r.id) AS pieces_done`;

/**
 * A run with its progress, and whether the server has restarted since it began (its unlogged
 * staging tables are then empty). $1: run id.
 */
export const selectRunSql = (s: QuotedSchema): string =>
  `SELECT ${runColumns(s)} FROM ${s}.${RUN_TABLE} r WHERE r.id = $1::int8`;

/** The newest unfinished run of a job, as {@link selectRunSql} shows it, or no row. $1: job id. */
export const unfinishedRunSql = (s: QuotedSchema): string =>
  `SELECT ${runColumns(s)} FROM ${s}.${RUN_TABLE} r
   WHERE r.job_id = $1::int8 AND r.finished_at IS NULL AND r.discarded_at IS NULL ORDER BY r.id DESC LIMIT 1`;

/**
 * Discards the unfinished runs of a bucket's older jobs, which can never finish, and one run of
 * this job ($3, or null). $1: job id, $2: bucket.
 */
export const discardRunsSql = (s: QuotedSchema): string =>
  `UPDATE ${s}.${RUN_TABLE} SET discarded_at = clock_timestamp()
   WHERE orca_archive_location = $2 AND finished_at IS NULL AND discarded_at IS NULL
     AND (job_id < $1::int8 OR id = $3::int8)`;

/** Runs of a bucket that are over (finished or discarded) but still have staging tables. $1: bucket. */
export const staleStagingSql = (s: QuotedSchema): string =>
  `SELECT id, pieces FROM ${s}.${RUN_TABLE}
   WHERE orca_archive_location = $1 AND (finished_at IS NOT NULL OR discarded_at IS NOT NULL)
     AND to_regclass('${s}.' || quote_ident('orca_reconcile_' || id || '_catalog')) IS NOT NULL`;

/** Records a finished copy. $1: run id, $2: rows copied. */
export const recordCopySql = (s: QuotedSchema, side: 'catalog' | 'listing'): string =>
  `UPDATE ${s}.${RUN_TABLE} SET ${side}_files = $2::int8 WHERE id = $1::int8`;

/** Pieces of a run not yet finished, in order. $1: run id, $2: pieces. */
export const missingPiecesSql = (s: QuotedSchema): string =>
  `SELECT n AS piece FROM generate_series(1, $2::int4) n
   WHERE NOT EXISTS (SELECT 1 FROM ${s}.${PIECE_TABLE} p WHERE p.run_id = $1::int8 AND p.piece = n) ORDER BY n`;

export const pieceDoneSql = (s: QuotedSchema): string =>
  `SELECT 1 FROM ${s}.${PIECE_TABLE} WHERE run_id = $1::int8 AND piece = $2::int4`;

/** Records a finished piece. $1 run, $2 piece, $3-$5 counts, $6 ms. */
export const recordPieceSql = (s: QuotedSchema): string =>
  `INSERT INTO ${s}.${PIECE_TABLE} (run_id, piece, phantoms, orphans, mismatches, duration_ms)
   VALUES ($1::int8, $2::int4, $3::int8, $4::int8, $5::int8, $6::int8)`;

/** Marks a run finished with its counts. $1 run, $2-$4 counts. */
export const finishRunSql = (s: QuotedSchema): string =>
  `UPDATE ${s}.${RUN_TABLE} SET finished_at = clock_timestamp(), phantoms = $2::int8, orphans = $3::int8, mismatches = $4::int8
   WHERE id = $1::int8`;

/**
 * The size of a bucket's listing as the planner knows it, without reading the rows: the
 * partition's `reltuples`, or, for a partition never analysed, its size over 130 bytes a row.
 * $1: the partition's qualified name, as text for `to_regclass`.
 */
export const estimateListingSql = `SELECT CASE WHEN c.reltuples > 0 THEN c.reltuples::int8
  ELSE pg_relation_size(c.oid) / 130 END AS files
  FROM pg_class c WHERE c.oid = to_regclass($1)`;

/**
 * Progress of the newest run of each of the given jobs: pieces done of the total, files compared
 * (the run's files in the share of its pieces done: a key's piece is a hash, so the pieces are
 * even), and whether the run has finished. $1: job ids.
 */
export const runProgressSql = (s: QuotedSchema): string => `
SELECT DISTINCT ON (r.job_id) r.job_id, r.id AS run_id, r.pieces, r.finished_at, r.started_at,
       count(p.piece) AS pieces_done,
       (coalesce(r.catalog_files + r.listing_files, 0) * count(p.piece) / r.pieces)::int8 AS files_done
FROM ${s}.${RUN_TABLE} r LEFT JOIN ${s}.${PIECE_TABLE} p ON p.run_id = r.id
WHERE r.job_id = ANY($1::int8[])
GROUP BY r.id
ORDER BY r.job_id, r.id DESC`;

/** Whether the progress tables exist in the schema. $1: the run table's qualified name. */
export const progressTablesExistSql = 'SELECT to_regclass($1) IS NOT NULL AS present';
