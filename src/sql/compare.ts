import { OrcaStatus } from '../status.js';
import { REPORT_TABLES, type ReportKind } from './reports.js';
import type { QuotedSchema } from './schema.js';

/**
 * A job and the job it is compared with: status and bucket of each. With `explicit`, the previous
 * job is `$2`; without, it is the highest id below `$1` of the same bucket with status success.
 * One row when job `$1` exists; the previous job's columns are null when there is none.
 */
export function jobPairSql(s: QuotedSchema, explicit: boolean): string {
  const previous = explicit
    ? `SELECT id, status_id, orca_archive_location FROM ${s}.reconcile_job WHERE id = $2::int8`
    : `SELECT id, status_id, orca_archive_location FROM ${s}.reconcile_job
       WHERE orca_archive_location = job.orca_archive_location AND id < job.id AND status_id = ${OrcaStatus.Success}
       ORDER BY id DESC LIMIT 1`;
  return `
SELECT job.status_id, job.orca_archive_location,
       previous.id AS previous_id, previous.status_id AS previous_status_id,
       previous.orca_archive_location AS previous_orca_archive_location
FROM ${s}.reconcile_job job
LEFT JOIN LATERAL (${previous}) AS previous ON true
WHERE job.id = $1::int8`;
}

/** Column prefixes of the two report rows a change row carries side by side. */
export const CURRENT_PREFIX = 'c_';
export const PREVIOUS_PREFIX = 'p_';

/**
 * The rows of one report of job `$1` set against those of job `$2`, matched on key_path, each
 * with its `change`: `new` (only in `$1`), `resolved` (only in `$2`), and for a key in both
 * `changed` when the mismatch's discrepancy_type differs, `unchanged` otherwise.
 *
 * A report whose primary key has more than key_path (phantom, mismatch) may hold one key_path
 * more than once within a job (never from generateReports: the catalog holds a key once per
 * bucket). Such rows are paired in order of the rest of the key, byte-wise, so every row is
 * matched at most once; `pair` numbers them (1 for the first row of a key).
 *
 * With `columns`, every column of both rows, named with {@link CURRENT_PREFIX} and
 * {@link PREVIOUS_PREFIX}; without, only change, key_path and pair.
 */
function changesSql(s: QuotedSchema, kind: ReportKind, columns: boolean): string {
  const { table, key, columns: names } = REPORT_TABLES[kind];
  const rest = key.filter((column) => column !== 'key_path');
  const pair =
    rest.length === 0 ? '1' : `row_number() OVER (PARTITION BY key_path ORDER BY ${rest.map((column) => `${column} COLLATE "C"`).join(', ')})`;
  const side = (job: string) => `SELECT ${names.join(', ')}, ${pair} AS pair FROM ${s}.${table} WHERE job_id = ${job}::int8`;
  const changed = names.includes('discrepancy_type') ? `WHEN c.discrepancy_type <> p.discrepancy_type THEN 'changed' ` : '';
  const rows = columns
    ? `,\n       ${names.map((name) => `c.${name} AS ${CURRENT_PREFIX}${name}, p.${name} AS ${PREVIOUS_PREFIX}${name}`).join(',\n       ')}`
    : '';
  return `
SELECT CASE WHEN p.key_path IS NULL THEN 'new' WHEN c.key_path IS NULL THEN 'resolved' ${changed}ELSE 'unchanged' END AS change,
       coalesce(c.key_path, p.key_path) AS key_path, coalesce(c.pair, p.pair) AS pair${rows}
FROM (${side('$1')}) AS c
FULL JOIN (${side('$2')}) AS p ON p.key_path = c.key_path AND p.pair = c.pair`;
}

/**
 * Opens a server-side cursor over the changes of one report between job `$1` and job `$2`, only
 * those whose change is in `$3` (text[]), in key_path order, byte-wise (the same whatever the
 * database's collation). `cursor` is a name the caller made (letters, digits and `_` only).
 */
export function declareChangesCursorSql(s: QuotedSchema, kind: ReportKind, cursor: string): string {
  return `DECLARE ${cursor} NO SCROLL CURSOR FOR
SELECT * FROM (${changesSql(s, kind, true)}) AS changes
WHERE change = ANY($3::text[])
ORDER BY key_path COLLATE "C", pair`;
}

/**
 * The number of changes of each kind in each report between job `$1` and job `$2`, in one
 * statement: rows of `kind`, `change` and `count`; a change no row has is absent.
 */
export function changeCountsSql(s: QuotedSchema, kinds: readonly ReportKind[]): string {
  return kinds
    .map((kind) => `SELECT '${kind}' AS kind, change, count(*) AS count FROM (${changesSql(s, kind, false)}) AS changes GROUP BY change`)
    .join('\nUNION ALL\n');
}
