import { throwIfAborted, validateSignal } from './abort.js';
import { readCursor, streamFromReadTransaction } from './cursor.js';
import type { Database } from './database.js';
import { DatabaseError, InvalidInputError } from './errors.js';
import { REPORT_KINDS, REPORT_TABLES, type ReportKind, declareReportCursorSql, reportPageSql } from './sql/reports.js';
import { schemaOf } from './sql/schema.js';
import type { SchemaOptions } from './types.js';
import { validateJobId } from './validation.js';

/**
 * A row of `reconcile_phantom_report`: a catalog file that S3 does not have. `orcaLastUpdate` is
 * the granule's `last_update`, as ORCA reports it.
 *
 * @example
 * ```ts
 * import { readReport } from 'orca-reconcile';
 *
 * for await (const phantom of readReport(pool, { jobId: 42, kind: 'phantom' })) {
 *   console.log(`${phantom.collectionId} ${phantom.granuleId}: ${phantom.keyPath} is missing from S3`);
 * }
 * ```
 * @category Reports
 */
export interface PhantomReportRow {
  jobId: bigint;
  collectionId: string;
  granuleId: string;
  filename: string;
  keyPath: string;
  orcaEtag: string;
  orcaLastUpdate: Date;
  orcaSize: bigint;
  orcaStorageClassId: number;
}

/**
 * A row of `reconcile_orphan_report`: an S3 object the catalog does not list.
 *
 * @example
 * ```ts
 * import { readReport } from 'orca-reconcile';
 *
 * for await (const orphan of readReport(pool, { jobId: 42, kind: 'orphan' })) {
 *   console.log(`${orphan.keyPath} (${orphan.sizeInBytes} bytes, ${orphan.storageClass}) is not in the catalog`);
 * }
 * ```
 * @category Reports
 */
export interface OrphanReportRow {
  jobId: bigint;
  keyPath: string;
  etag: string;
  lastUpdate: Date;
  sizeInBytes: bigint;
  storageClass: string;
}

/**
 * A row of `reconcile_catalog_mismatch_report`: a file whose etag, size or storage class differs.
 *
 * @example
 * ```ts
 * import { readReport } from 'orca-reconcile';
 *
 * for await (const mismatch of readReport(pool, { jobId: 42, kind: 'mismatch' })) {
 *   if (mismatch.discrepancyType.includes('etag')) console.log(`${mismatch.keyPath}: ${mismatch.orcaEtag} != ${mismatch.s3Etag}`);
 * }
 * ```
 * @category Reports
 */
export interface MismatchReportRow {
  jobId: bigint;
  collectionId: string;
  granuleId: string;
  filename: string;
  keyPath: string;
  cumulusArchiveLocation: string;
  orcaEtag: string;
  s3Etag: string;
  orcaLastUpdate: Date;
  s3LastUpdate: Date;
  orcaSizeInBytes: bigint;
  s3SizeInBytes: bigint;
  orcaStorageClassId: number;
  s3StorageClass: string;
  /** The differing properties, in this order, joined by ", ": etag, size_in_bytes, storage_class. */
  discrepancyType: string;
}

/**
 * The three reports, by the name the CLI and these functions use, and the row type of each.
 *
 * @example
 * ```ts
 * import type { ReportRows } from 'orca-reconcile';
 *
 * const describe = (row: ReportRows['orphan']) => `${row.keyPath}: ${row.sizeInBytes} bytes`;
 * ```
 * @category Reports
 */
export interface ReportRows {
  phantom: PhantomReportRow;
  orphan: OrphanReportRow;
  mismatch: MismatchReportRow;
}

export type { ReportKind };

export { REPORT_KINDS };

/** The report's column names in table order, as the CSV header uses them. */
export function reportColumns(kind: ReportKind): readonly string[] {
  return REPORT_TABLES[validateKind(kind)].columns;
}

/**
 * Which report of which job to read.
 *
 * @example
 * ```ts
 * import { readReport, type ReportQuery } from 'orca-reconcile';
 *
 * const query = { jobId: 42, kind: 'mismatch' } satisfies ReportQuery;
 * for await (const row of readReport(pool, query)) console.log(row.discrepancyType);
 * ```
 * @category Reports
 */
export interface ReportQuery {
  jobId: number;
  kind: ReportKind;
}

/** A report kind, checked: an InvalidInputError naming `field` otherwise. */
export function validateKind(kind: unknown, field = 'kind'): ReportKind {
  if (typeof kind !== 'string' || !Object.hasOwn(REPORT_TABLES, kind)) {
    throw new InvalidInputError(field, `${field} must be one of ${REPORT_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  }
  return kind as ReportKind;
}

/** A column's key in the typed rows: `key_path` is `keyPath`. */
export const camel = (column: string): string => column.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());

const INT8_COLUMNS = new Set(['job_id', 'orca_size', 'size_in_bytes', 'orca_size_in_bytes', 's3_size_in_bytes']);
const TIME_COLUMNS = new Set(['orca_last_update', 'last_update', 's3_last_update']);

/** One column of a report: its name, its key in the typed row, and how its value is read. */
interface ColumnReader {
  column: string;
  key: string;
  read(value: unknown): unknown;
}

// int8 as bigint, exact whatever the driver returned (pg a string, PGlite a number or a bigint),
// timestamps as Date, class ids as numbers.
const readInt8 = (value: unknown): bigint => BigInt(value as string | number | bigint);
const readTime = (value: unknown): Date => (value instanceof Date ? value : new Date(String(value)));
const readAsIs = (value: unknown): unknown => value;

/** Each report's column readers, made once: a row is read without looking its columns up again. */
const COLUMN_READERS = Object.fromEntries(
  REPORT_KINDS.map((kind) => [
    kind,
    REPORT_TABLES[kind].columns.map(
      (column): ColumnReader => ({
        column,
        key: camel(column),
        read: INT8_COLUMNS.has(column) ? readInt8 : TIME_COLUMNS.has(column) ? readTime : column.endsWith('storage_class_id') ? Number : readAsIs,
      }),
    ),
  ]),
) as Record<ReportKind, ColumnReader[]>;

/**
 * Database row to typed row (see {@link COLUMN_READERS}). Each column is read from `prefix`
 * followed by its name, for statements that return two report rows side by side.
 */
export function toRow<K extends ReportKind>(kind: K, raw: Record<string, unknown>, prefix = ''): ReportRows[K] {
  const row: Record<string, unknown> = {};
  for (const { column, key, read } of COLUMN_READERS[kind]) row[key] = read(raw[prefix + column]);
  return row as unknown as ReportRows[K];
}

/**
 * Options of {@link readReport}.
 *
 * @example
 * ```ts
 * import { readReport } from 'orca-reconcile';
 *
 * for await (const row of readReport(pool, { jobId: 42, kind: 'orphan' }, { batchSize: 5000, schema: 'orca' })) {
 *   console.log(row.keyPath);
 * }
 * ```
 * @category Reports
 */
export interface ReadReportOptions extends SchemaOptions {
  /** Rows fetched from the server at a time. Default 1000. */
  batchSize?: number;
  /**
   * Stops the read: the FETCH running on the server is cancelled, the transaction rolls back,
   * the connection is released, and the loop rejects with {@link AbortError}.
   */
  signal?: AbortSignal;
}

/** An integer option from 1 to `max`: an InvalidInputError naming `field` otherwise. */
export function positiveInteger(value: unknown, field: string, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidInputError(field, `${field} must be an integer between 1 and ${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * Reads a job's report row by row, in primary-key order, through a server-side cursor: memory
 * stays flat whatever the report's size. The rows are read in one read-only transaction, so they
 * are a consistent snapshot. Stop early by breaking out of the loop; the cursor is closed.
 *
 * With a `pg` Pool one connection is held until the loop ends. With a `pg` Client, queries made
 * inside the loop run in the same read-only transaction, and reads that overlap on that client
 * (one inside another's loop, or two consumed in turns) share it: it commits when the last one
 * ends. Do not write on that client inside the loop. A PGlite instance runs one transaction
 * at a time, so other queries on the same instance wait until the loop ends: do not await them
 * inside it.
 *
 * @example
 * ```ts
 * import { readReport } from 'orca-reconcile';
 *
 * for await (const row of readReport(pool, { jobId: 42, kind: 'mismatch' })) {
 *   console.log(row.keyPath, row.discrepancyType);
 * }
 * ```
 * @category Reports
 */
export async function* readReport<K extends ReportKind>(
  database: Database,
  query: ReportQuery & { kind: K },
  options: ReadReportOptions = {},
): AsyncGenerator<ReportRows[K], void, undefined> {
  const jobId = validateJobId(query?.jobId);
  const kind = validateKind(query.kind) as K;
  const schema = schemaOf(options);
  const batchSize = positiveInteger(options.batchSize ?? 1000, 'batchSize', 100_000);
  const signal = validateSignal(options.signal);
  throwIfAborted(signal, 'read report');
  yield* streamFromReadTransaction<ReportRows[K]>(database, 'read report', signal, async (tx, emit) => {
    await readCursor(tx, (cursor) => declareReportCursorSql(schema, kind, cursor), [jobId], batchSize, (raw) => toRow(kind, raw), emit);
  });
}

/**
 * Options of {@link readReportPage}.
 *
 * @example
 * ```ts
 * import { readReportPage } from 'orca-reconcile';
 *
 * const first = await readReportPage(pool, { jobId: 42, kind: 'phantom' }, { pageSize: 200 });
 * const second = await readReportPage(pool, { jobId: 42, kind: 'phantom' }, { pageSize: 200, cursor: first.nextCursor });
 * ```
 * @category Reports
 */
export interface ReadReportPageOptions extends SchemaOptions {
  /** Rows per page. Default 100, at most 10000. */
  pageSize?: number;
  /** The `nextCursor` of the previous page; absent for the first page. */
  cursor?: string | null;
}

/**
 * One page of a report and the cursor of the next, `null` after the last page. The cursor is
 * opaque: pass it back as it is.
 *
 * @example
 * ```ts
 * import { readReportPage, type ReportPage } from 'orca-reconcile';
 *
 * const page: ReportPage<'mismatch'> = await readReportPage(pool, { jobId: 42, kind: 'mismatch' });
 * console.log(page.rows.length, page.nextCursor === null ? 'last page' : 'more to come');
 * ```
 * @category Reports
 */
export interface ReportPage<K extends ReportKind> {
  rows: ReportRows[K][];
  nextCursor: string | null;
}

/**
 * Reads one page of a job's report with keyset pagination, for API hosts: each page is one
 * indexed query that starts after the previous page's last key, so deep pages cost the same as
 * the first and no connection is held between pages. Pass `nextCursor` back to get the next page.
 *
 * @example
 * ```ts
 * import { readReportPage, type ReportPage } from 'orca-reconcile';
 *
 * let cursor: string | null = null;
 * do {
 *   const page: ReportPage<'orphan'> = await readReportPage(pool, { jobId: 42, kind: 'orphan' }, { pageSize: 500, cursor });
 *   send(page.rows);
 *   cursor = page.nextCursor;
 * } while (cursor);
 * ```
 * @category Reports
 */
export async function readReportPage<K extends ReportKind>(
  database: Database,
  query: ReportQuery & { kind: K },
  options: ReadReportPageOptions = {},
): Promise<ReportPage<K>> {
  const jobId = validateJobId(query?.jobId);
  const kind = validateKind(query.kind) as K;
  const schema = schemaOf(options);
  const pageSize = positiveInteger(options.pageSize ?? 100, 'pageSize', 10_000);
  const { key } = REPORT_TABLES[kind];
  const after = options.cursor === undefined || options.cursor === null ? undefined : decodeCursor(options.cursor, kind, key.length);

  const values: unknown[] = [jobId, pageSize + 1, ...(after ?? [])];
  let rows: Record<string, unknown>[];
  try {
    const result = await database.query(reportPageSql(schema, kind, after !== undefined), values);
    rows = result.rows as Record<string, unknown>[];
  } catch (error) {
    throw new DatabaseError('read report page', error);
  }
  const more = rows.length > pageSize;
  const page = more ? rows.slice(0, pageSize) : rows;
  const last = page.at(-1);
  return {
    rows: page.map((raw) => toRow(kind, raw)),
    nextCursor: more && last ? encodeCursor(kind, key.map((column) => String(last[column]))) : null,
  };
}

// A cursor names its report kind, so that it cannot be replayed against another report.
function encodeCursor(kind: ReportKind, values: string[]): string {
  return Buffer.from(JSON.stringify([kind, ...values]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: unknown, kind: ReportKind, length: number): string[] {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(String(cursor), 'base64url').toString('utf8'));
    if (
      Array.isArray(decoded) &&
      decoded[0] === kind &&
      decoded.length === length + 1 &&
      decoded.every((value) => typeof value === 'string')
    ) {
      return decoded.slice(1) as string[];
    }
  } catch {
    // reported below
  }
  throw new InvalidInputError('cursor', 'cursor must be the nextCursor of an earlier page of the same report');
}
