import { throwIfAborted, validateSignal, withAbort } from './abort.js';
import { type Database, type Queryable, withReadTransaction } from './database.js';
import { DatabaseError, InvalidInputError, OrcaReconcileError } from './errors.js';
import {
  REPORT_KINDS,
  REPORT_TABLES,
  type ReportKind,
  closeCursorSql,
  declareReportCursorSql,
  fetchCursorSql,
  reportPageSql,
} from './sql/reports.js';
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

function validateKind(kind: unknown): ReportKind {
  if (typeof kind !== 'string' || !Object.hasOwn(REPORT_TABLES, kind)) {
    throw new InvalidInputError('kind', `kind must be one of ${REPORT_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  }
  return kind as ReportKind;
}

const camel = (column: string): string => column.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());

const INT8_COLUMNS = new Set(['job_id', 'orca_size', 'size_in_bytes', 'orca_size_in_bytes', 's3_size_in_bytes']);
const TIME_COLUMNS = new Set(['orca_last_update', 'last_update', 's3_last_update']);

/**
 * Database row to typed row: int8 as bigint, exact whatever the driver returned (pg a string,
 * PGlite a number or a bigint), timestamps as Date.
 */
function toRow<K extends ReportKind>(kind: K, raw: Record<string, unknown>): ReportRows[K] {
  const row: Record<string, unknown> = {};
  for (const column of REPORT_TABLES[kind].columns) {
    const value = raw[column];
    if (INT8_COLUMNS.has(column)) row[camel(column)] = BigInt(value as string | number | bigint);
    else if (TIME_COLUMNS.has(column)) row[camel(column)] = value instanceof Date ? value : new Date(String(value));
    else if (column.endsWith('storage_class_id')) row[camel(column)] = Number(value);
    else row[camel(column)] = value;
  }
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

function positiveInteger(value: unknown, field: string, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidInputError(field, `${field} must be an integer between 1 and ${max}, got ${String(value)}`);
  }
  return value;
}

let cursorCounter = 0;

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
  // Each read its own cursor name, so that reads sharing a client's transaction do not collide.
  const cursorName = `orca_report_rows_${(cursorCounter += 1)}`;

  // The generator cannot yield from inside the transaction's callback, so batches are handed over
  // through a small queue: the transaction fetches the next batch only once the last is consumed.
  const channel = createChannel<ReportRows[K][]>();
  const reading = withReadTransaction(database, (client: Queryable) => withAbort(client, signal, 'read report', async (tx) => {
    await tx.query(declareReportCursorSql(schema, kind, cursorName), [jobId]);
    for (;;) {
      const { rows } = await tx.query(fetchCursorSql(cursorName, batchSize));
      if (rows.length === 0) break;
      const wanted = await channel.put(rows.map((raw) => toRow(kind, raw as Record<string, unknown>)));
      if (!wanted) break;
    }
    await tx.query(closeCursorSql(cursorName));
  })).then(
    () => channel.end(),
    (error: unknown) => channel.fail(error instanceof OrcaReconcileError ? error : new DatabaseError('read report', error)),
  );

  try {
    for (;;) {
      const batch = await channel.take();
      if (batch === undefined) break;
      for (const row of batch) {
        throwIfAborted(signal, 'read report');
        yield row;
      }
    }
  } finally {
    channel.cancel();
    await reading;
  }
}

/** One batch in flight between the transaction and the consumer. */
function createChannel<T>() {
  let pending: { resolve: (value: T | undefined) => void; reject: (error: unknown) => void } | undefined;
  let waitingPut: ((wanted: boolean) => void) | undefined;
  let buffered: { value: T; ack: (wanted: boolean) => void } | undefined;
  let done = false;
  let failure: unknown;
  let cancelled = false;

  return {
    put(value: T): Promise<boolean> {
      if (cancelled) return Promise.resolve(false);
      return new Promise<boolean>((ack) => {
        if (pending) {
          const taker = pending;
          pending = undefined;
          waitingPut = ack;
          taker.resolve(value);
        } else {
          buffered = { value, ack };
        }
      });
    },
    take(): Promise<T | undefined> {
      // The consumer asks for more: the producer may fetch the next batch.
      const ack = waitingPut;
      waitingPut = undefined;
      ack?.(true);
      if (buffered) {
        const { value, ack: bufferedAck } = buffered;
        buffered = undefined;
        waitingPut = bufferedAck;
        return Promise.resolve(value);
      }
      if (failure !== undefined) return Promise.reject(failure);
      if (done) return Promise.resolve(undefined);
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
      });
    },
    end(): void {
      done = true;
      pending?.resolve(undefined);
      pending = undefined;
    },
    fail(error: unknown): void {
      failure = error;
      pending?.reject(error);
      pending = undefined;
    },
    cancel(): void {
      cancelled = true;
      waitingPut?.(false);
      waitingPut = undefined;
      buffered?.ack(false);
      buffered = undefined;
    },
  };
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
