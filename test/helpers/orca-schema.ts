import type { TestDatabase } from './database.js';

const quote = (identifier: string): string => `"${identifier.replaceAll('"', '""')}"`;

/** Name of a bucket's inventory partition, as ORCA derives it. */
export function partitionName(bucket: string): string {
  return `reconcile_s3_object_${bucket.replaceAll('-', '_')}`;
}

/**
 * The ORCA catalog and reconciliation tables, written from the contract in
 * shared/spec/ORCA-RECONCILE.md, with one inventory partition per bucket.
 */
export function orcaSchemaDdl(schema: string, buckets: readonly string[]): string {
  const s = quote(schema);
  const partitions = buckets
    .map(
      (bucket) => `
CREATE TABLE ${s}.${quote(partitionName(bucket))} PARTITION OF ${s}.reconcile_s3_object
  (PRIMARY KEY (key_path), FOREIGN KEY (job_id) REFERENCES ${s}.reconcile_job (id))
  FOR VALUES IN ('${bucket.replaceAll("'", "''")}');`,
    )
    .join('\n');
  return `
CREATE SCHEMA ${s};
CREATE TABLE ${s}.storage_class (id int2 PRIMARY KEY, value text NOT NULL UNIQUE);
INSERT INTO ${s}.storage_class VALUES (1, 'GLACIER'), (2, 'DEEP_ARCHIVE');
CREATE TABLE ${s}.providers (provider_id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE ${s}.collections (collection_id text PRIMARY KEY, shortname text NOT NULL, version text NOT NULL);
CREATE TABLE ${s}.granules (
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
CREATE TABLE ${s}.files (
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
CREATE TABLE ${s}.reconcile_status (id int2 PRIMARY KEY, value text NOT NULL UNIQUE);
INSERT INTO ${s}.reconcile_status VALUES
  (1, 'getting S3 list'), (2, 'staged'), (3, 'generating reports'), (4, 'error'), (5, 'success');
CREATE TABLE ${s}.reconcile_job (
  id bigserial PRIMARY KEY,
  orca_archive_location text NOT NULL,
  status_id int2 NOT NULL REFERENCES ${s}.reconcile_status (id),
  inventory_creation_time timestamptz NOT NULL,
  start_time timestamptz NOT NULL,
  last_update timestamptz NOT NULL,
  end_time timestamptz NULL,
  error_message text NULL
);
CREATE TABLE ${s}.reconcile_s3_object (
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
CREATE TABLE ${s}.reconcile_phantom_report (
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
CREATE TABLE ${s}.reconcile_orphan_report (
  job_id int8 NOT NULL REFERENCES ${s}.reconcile_job (id),
  key_path text NOT NULL,
  etag text NOT NULL,
  last_update timestamptz NOT NULL,
  size_in_bytes int8 NOT NULL,
  storage_class text NOT NULL,
  PRIMARY KEY (job_id, key_path)
);
CREATE TABLE ${s}.reconcile_catalog_mismatch_report (
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

/** Creates the ORCA schema `schema` with one partition per bucket; returns a function that drops it. */
export async function createOrcaSchema(
  database: TestDatabase,
  schema: string,
  buckets: readonly string[],
): Promise<() => Promise<void>> {
  await database.exec(orcaSchemaDdl(schema, buckets));
  return () => database.exec(`DROP SCHEMA ${quote(schema)} CASCADE`);
}
