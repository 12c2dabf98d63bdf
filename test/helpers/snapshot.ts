import type { TestDatabase } from './database.js';

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
