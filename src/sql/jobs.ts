import { OrcaStatus } from '../status.js';
import type { QuotedSchema } from './schema.js';
import { reportCountColumns } from './reports.js';

/**
 * Takes the job's transaction-scoped advisory lock, two int4 keys. $1: the schema's key (see
 * {@link jobLockKeys}), $2: the job id, mapped onto the 31-bit second key; two jobs that collide
 * only wait for each other, never share work.
 */
export const LOCK_JOB_SQL = 'SELECT pg_advisory_xact_lock($1::int4, ($2::int8 % 2147483648)::int4)';

/**
 * The same lock in shared mode: the pieces of one run hold it together, while planning and
 * finishing a run, and a single-statement run, hold it alone.
 */
export const LOCK_JOB_SHARED_SQL = 'SELECT pg_advisory_xact_lock_shared($1::int4, ($2::int8 % 2147483648)::int4)';

/**
 * Takes the lock of one work item of a run (a copy or a piece) if it is free: true when taken.
 * $1: the run's key (see {@link runLockKey}), $2: the item.
 */
export const TRY_LOCK_ITEM_SQL = 'SELECT pg_try_advisory_xact_lock($1::int4, $2::int4) AS taken';

/** Waits for the lock of one work item of a run. $1: the run's key, $2: the item. */
export const LOCK_ITEM_SQL = 'SELECT pg_advisory_xact_lock($1::int4, $2::int4)';

/** The same lock held by the session, across transactions, until {@link UNLOCK_ITEM_SESSION_SQL}. */
export const LOCK_ITEM_SESSION_SQL = 'SELECT pg_advisory_lock($1::int4, $2::int4)';
export const UNLOCK_ITEM_SESSION_SQL = 'SELECT pg_advisory_unlock($1::int4, $2::int4)';

/**
 * The two keys of a job's advisory lock: a 32-bit FNV-1a hash of `orca-reconcile:` and the quoted
 * schema name, so that jobs of the same id in two schemas do not wait for each other, and the job
 * id modulo 2^31. Advisory locks are per database; the two-key form keeps them apart from
 * single-key locks other code takes.
 */
export function jobLockKeys(schema: QuotedSchema, jobId: number): [number, number] {
  return [fnv1a(`orca-reconcile:${schema}`), jobId % 2 ** 31];
}

/**
 * The first key of the locks of one run's work items: a 32-bit FNV-1a hash of
 * `orca-reconcile-run:`, the quoted schema name and the run id. The second key numbers the item.
 */
export function runLockKey(schema: QuotedSchema, runId: number): number {
  return fnv1a(`orca-reconcile-run:${schema}:${runId}`);
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash | 0;
}

/** A job's status and bucket. $1: job id. */
export const selectJobSql = (s: QuotedSchema): string =>
  `SELECT status_id, orca_archive_location FROM ${s}.reconcile_job WHERE id = $1::int8`;

/** One row when the job exists. $1: job id. */
export const jobExistsSql = (s: QuotedSchema): string => `SELECT 1 FROM ${s}.reconcile_job WHERE id = $1::int8`;

/**
 * Sets status and timestamps in one statement. Terminal statuses (error, success) stamp
 * end_time; every other status clears it. One clock_timestamp() (not now()) for both stamps: a
 * change made late in a long transaction is stamped with its own time, and last_update equals
 * end_time exactly. $1: job id, $2: status, $3: error message or null, $4: the statuses the job
 * may be in for the change to apply, or null for any.
 */
export const updateJobSql = (s: QuotedSchema): string => `
UPDATE ${s}.reconcile_job
SET status_id = $2::int2,
    last_update = stamp.now,
    end_time = CASE WHEN $2::int2 IN (${OrcaStatus.Error}, ${OrcaStatus.Success}) THEN stamp.now END,
    error_message = $3::text
FROM (SELECT clock_timestamp() AS now) AS stamp
WHERE id = $1::int8 AND ($4::int2[] IS NULL OR status_id = ANY($4::int2[]))`;

/**
 * Recent jobs, newest first by id (bigserial: creation order; indexed), with their status name
 * and report counts. $1: bucket or null for every bucket, $2: how many.
 */
export const recentJobsSql = (s: QuotedSchema): string => `
SELECT j.id, j.orca_archive_location, j.status_id, st.value AS status, j.start_time, j.last_update,
       j.end_time, j.error_message, ${reportCountColumns(s, 'j.id')}
FROM ${s}.reconcile_job j
JOIN ${s}.reconcile_status st ON st.id = j.status_id
WHERE $1::text IS NULL OR j.orca_archive_location = $1::text
ORDER BY j.id DESC
LIMIT $2`;

/** The newest job of the job's bucket created after it, or no row. $1: job id, $2: bucket. */
export const newerJobSql = (s: QuotedSchema): string =>
  `SELECT max(id) AS newer_job_id FROM ${s}.reconcile_job WHERE orca_archive_location = $2 AND id > $1::int8 HAVING max(id) IS NOT NULL`;
