import { type Database, type Queryable, withTransaction } from '../database.js';
import { DatabaseError, InvalidInputError } from '../errors.js';
import type { SchemaOptions } from '../types.js';
import { IDENTIFIER, validateArchiveLocation } from '../validation.js';
import { type QuotedSchema, quoteSchema } from './schema.js';
import { progressTablesSql as progressStatementsSql, progressTablesStatements } from './pieces.js';

/** Name of a bucket's inventory partition, as ORCA derives it: every `-` becomes `_`. */
export function partitionName(bucket: string): string {
  return `reconcile_s3_object_${bucket.replaceAll('-', '_')}`;
}

/** A bucket's inventory partition as a qualified name, as `to_regclass` takes it. */
export const partitionRelation = (s: QuotedSchema, bucket: string): string => `${s}."${partitionName(bucket)}"`;

/** Checks a bucket name and that its partition name is a valid PostgreSQL identifier. */
export function validatePartitionBucket(bucket: unknown, field = 'bucket'): string {
  const name = validateArchiveLocation(bucket, field);
  if (!IDENTIFIER.test(partitionName(name))) {
    throw new InvalidInputError(
      field,
      `${field} "${name}" gives the partition name "${partitionName(name)}", which is not a PostgreSQL identifier (at most 63 characters of letters, digits, "_" and "$"; no ".")`,
    );
  }
  return name;
}

const literal = (text: string): string => `'${text.replaceAll("'", "''")}'`;

/**
 * The ORCA catalog and reconciliation tables, as the contract describes them, with one inventory
 * partition per bucket. Every statement is idempotent (IF NOT EXISTS, ON CONFLICT DO NOTHING), so
 * running it again only adds what is missing. For development and test databases: production
 * ORCA creates these tables itself.
 */
export function orcaTablesSql(schemaName: string, buckets: readonly string[]): string {
  const s = quoteSchema(schemaName);
  const partitions = buckets
    .map((bucket) => validatePartitionBucket(bucket))
    .map(
      (bucket) => `
CREATE TABLE IF NOT EXISTS ${s}."${partitionName(bucket)}" PARTITION OF ${s}.reconcile_s3_object
  (PRIMARY KEY (key_path), FOREIGN KEY (job_id) REFERENCES ${s}.reconcile_job (id))
  FOR VALUES IN (${literal(bucket)});`,
    )
    .join('\n');
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.storage_class (id int2 PRIMARY KEY, value text NOT NULL UNIQUE);
INSERT INTO ${s}.storage_class VALUES (1, 'GLACIER'), (2, 'DEEP_ARCHIVE') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS ${s}.providers (provider_id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE IF NOT EXISTS ${s}.collections (collection_id text PRIMARY KEY, shortname text NOT NULL, version text NOT NULL);
CREATE TABLE IF NOT EXISTS ${s}.granules (
  id bigserial PRIMARY KEY,
  provider_id text NOT NULL REFERENCES ${s}.providers (provider_id),
  collection_id text NOT NULL REFERENCES ${s}.collections (collection_id),
  cumulus_granule_id text NOT NULL,
  execution_id text NOT NULL,
  ingest_time timestamptz NOT NULL,
  cumulus_create_time timestamptz NOT NULL,
  last_update timestamptz NOT NULL,
  UNIQUE (collection_id, cumulus_granule_id)
);
CREATE TABLE IF NOT EXISTS ${s}.files (
  id bigserial PRIMARY KEY,
  granule_id bigint NOT NULL REFERENCES ${s}.granules (id),
  name text NOT NULL,
  orca_archive_location text NOT NULL,
  cumulus_archive_location text NOT NULL,
  key_path text NOT NULL,
  ingest_time timestamptz NOT NULL,
  etag text NOT NULL,
  version text NOT NULL,
  size_in_bytes int8 NOT NULL,
  hash text NULL,
  hash_type text NULL,
  storage_class_id int2 NOT NULL REFERENCES ${s}.storage_class (id),
  UNIQUE (orca_archive_location, key_path),
  UNIQUE (cumulus_archive_location, key_path)
);
CREATE TABLE IF NOT EXISTS ${s}.reconcile_status (id int2 PRIMARY KEY, value text NOT NULL UNIQUE);
INSERT INTO ${s}.reconcile_status VALUES
  (1, 'getting S3 list'), (2, 'staged'), (3, 'generating reports'), (4, 'error'), (5, 'success')
  ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS ${s}.reconcile_job (
  id bigserial PRIMARY KEY,
  orca_archive_location text NOT NULL,
  status_id int2 NOT NULL REFERENCES ${s}.reconcile_status (id),
  inventory_creation_time timestamptz NOT NULL,
  start_time timestamptz NOT NULL,
  last_update timestamptz NOT NULL,
  end_time timestamptz NULL,
  error_message text NULL
);
CREATE TABLE IF NOT EXISTS ${s}.reconcile_s3_object (
  job_id int8 NOT NULL,
  orca_archive_location text NOT NULL,
  key_path text NOT NULL,
  etag text NOT NULL,
  last_update timestamptz NOT NULL,
  size_in_bytes int8 NOT NULL,
  storage_class text NOT NULL,
  delete_marker bool NOT NULL DEFAULT false
) PARTITION BY LIST (orca_archive_location);
${partitions}
CREATE TABLE IF NOT EXISTS ${s}.reconcile_phantom_report (
  job_id int8 NOT NULL REFERENCES ${s}.reconcile_job (id),
  collection_id text NOT NULL,
  granule_id text NOT NULL,
  filename text NOT NULL,
  key_path text NOT NULL,
  orca_etag text NOT NULL,
  orca_last_update timestamptz NOT NULL,
  orca_size int8 NOT NULL,
  orca_storage_class_id int2 NOT NULL REFERENCES ${s}.storage_class (id),
  PRIMARY KEY (job_id, collection_id, granule_id, key_path)
);
CREATE TABLE IF NOT EXISTS ${s}.reconcile_orphan_report (
  job_id int8 NOT NULL REFERENCES ${s}.reconcile_job (id),
  key_path text NOT NULL,
  etag text NOT NULL,
  last_update timestamptz NOT NULL,
  size_in_bytes int8 NOT NULL,
  storage_class text NOT NULL,
  PRIMARY KEY (job_id, key_path)
);
CREATE TABLE IF NOT EXISTS ${s}.reconcile_catalog_mismatch_report (
  job_id int8 NOT NULL REFERENCES ${s}.reconcile_job (id),
  collection_id text NOT NULL,
  granule_id text NOT NULL,
  filename text NOT NULL,
  key_path text NOT NULL,
  cumulus_archive_location text NOT NULL,
  orca_etag text NOT NULL,
  s3_etag text NOT NULL,
  orca_last_update timestamptz NOT NULL,
  s3_last_update timestamptz NOT NULL,
  orca_size_in_bytes int8 NOT NULL,
  s3_size_in_bytes int8 NOT NULL,
  orca_storage_class_id int2 NOT NULL REFERENCES ${s}.storage_class (id),
  s3_storage_class text NOT NULL,
  discrepancy_type text NOT NULL,
  PRIMARY KEY (job_id, collection_id, granule_id, key_path)
);`;
}

/**
 * Options of {@link createOrcaTables}.
 *
 * @example
 * ```ts
 * import type { CreateOrcaTablesOptions } from 'orca-reconcile';
 *
 * const options: CreateOrcaTablesOptions = { schema: 'orca_test', buckets: ['prefix-orca-primary'] };
 * ```
 * @category Jobs
 */
export interface CreateOrcaTablesOptions extends SchemaOptions {
  /** The archive buckets: each gets an inventory partition of `reconcile_s3_object`. May be empty. */
  buckets: readonly string[];
}

/**
 * Creates the ORCA catalog and reconciliation tables (`files`, `granules`, `reconcile_job`, the
 * inventory table `reconcile_s3_object` with one partition per bucket, the three report tables
 * and the rest) and the schema itself, in one transaction, as the ORCA contract describes them.
 * For development and test databases: production ORCA creates these tables itself. Every
 * statement is idempotent, so running it again succeeds and only adds what is missing, such as
 * the partition of a new bucket.
 *
 * @throws {@link InvalidInputError} for a schema that is not a PostgreSQL identifier, or a bucket
 * whose partition name would not be one, before any statement.
 * @throws {@link DatabaseError} when a statement fails; the transaction is rolled back.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createOrcaTables } from 'orca-reconcile';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await createOrcaTables(pool, { schema: 'orca_test', buckets: ['prefix-orca-primary', 'prefix-orca-secondary'] });
 * ```
 * @category Jobs
 */
export async function createOrcaTables(database: Database, options: CreateOrcaTablesOptions): Promise<void> {
  const buckets = (options as Partial<CreateOrcaTablesOptions> | undefined)?.buckets;
  if (!Array.isArray(buckets)) {
    throw new InvalidInputError('options.buckets', 'options.buckets must be an array of bucket names (it may be empty)');
  }
  const statements = orcaTablesStatements(options.schema ?? 'orca', buckets);
  try {
    await withTransaction(database, (tx) => runStatements(tx, statements));
  } catch (error) {
    throw new DatabaseError('create the ORCA tables', error);
  }
}

/**
 * {@link createOrcaTables} inside a transaction the caller holds on `tx`, so that it can do more
 * in the same transaction.
 */
export async function createOrcaTablesIn(tx: Queryable, schemaName: string, buckets: readonly string[]): Promise<void> {
  await runStatements(tx, orcaTablesStatements(schemaName, buckets));
}

/**
 * {@link orcaTablesSql} one statement at a time (PGlite's `query` takes one statement), then the
 * library's progress tables.
 */
function orcaTablesStatements(schemaName: string, buckets: readonly string[]): string[] {
  return [...splitStatements(orcaTablesSql(schemaName, buckets)), ...progressTablesStatements(quoteSchema(schemaName))];
}

/**
 * The DDL of the library's own progress tables, `orca_reconcile_run` and `orca_reconcile_piece`,
 * in the given schema (default `orca`), as one idempotent script. A pieced run records its plan
 * and finished pieces there; ORCA's tables are never altered. Apply it once to an ORCA database,
 * with the privileges of the user that owns the ORCA schema (`orca-reconcile schema --progress --print`
 * prints it).
 *
 * @throws {@link InvalidInputError} for a schema that is not a PostgreSQL identifier.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { progressTablesSql } from 'orca-reconcile';
 *
 * writeFileSync('orca-reconcile-progress.sql', progressTablesSql('orca'));
 * ```
 * @category Jobs
 */
export function progressTablesSql(schemaName = 'orca'): string {
  const s = quoteSchema(schemaName);
  return `CREATE SCHEMA IF NOT EXISTS ${s};\n${progressStatementsSql(s)}`;
}

/**
 * Creates the library's progress tables ({@link progressTablesSql}) in one transaction. Every
 * statement is idempotent. {@link createOrcaTables} creates them too.
 *
 * @throws {@link InvalidInputError} for a schema that is not a PostgreSQL identifier.
 * @throws {@link DatabaseError} when a statement fails; the transaction is rolled back.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createProgressTables } from 'orca-reconcile';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await createProgressTables(pool, { schema: 'orca' });
 * ```
 * @category Jobs
 */
export async function createProgressTables(database: Database, options: SchemaOptions = {}): Promise<void> {
  const s = quoteSchema(options.schema ?? 'orca');
  const statements = [`CREATE SCHEMA IF NOT EXISTS ${s}`, ...progressTablesStatements(s)];
  try {
    await withTransaction(database, (tx) => runStatements(tx, statements));
  } catch (error) {
    throw new DatabaseError('create the progress tables', error);
  }
}

async function runStatements(tx: Queryable, statements: readonly string[]): Promise<void> {
  for (const statement of statements) await tx.query(statement);
}

/** Splits the DDL above at statement ends; it has no semicolons inside literals or bodies. */
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*\n/)
    .map((statement) => statement.trim().replace(/;$/, ''))
    .filter((statement) => statement !== '');
}

/**
 * The partition bounds of the schema's inventory table, one row per partition
 * (`FOR VALUES IN ('bucket')`). $1: the table's qualified name, as text for `to_regclass`.
 */
export const partitionBoundsSql = `SELECT pg_get_expr(c.relpartbound, c.oid) AS bound
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = to_regclass($1)`;

/** The qualified name of the schema's inventory table, as {@link partitionBoundsSql} takes it. */
export const inventoryTableName = (s: QuotedSchema): string => `${s}.reconcile_s3_object`;
