import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { REPORT_KINDS, reportColumns } from '../../src/read-report.js';
import {
  type Database,
  DatabaseError,
  InvalidInputError,
  type ReportKind,
  type ReportPage,
  type ReportRows,
  readReport,
  readReportPage,
} from '../../src/index.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { camel, inKeyOrder, insertJob, insertReportRows, reportRow } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';

async function readAll<K extends ReportKind>(
  database: Database,
  jobId: number,
  kind: K,
  options: { schema: string; batchSize?: number },
): Promise<ReportRows[K][]> {
  const rows: ReportRows[K][] = [];
  for await (const row of readReport(database, { jobId, kind }, options)) rows.push(row);
  return rows;
}

// The unnamed portal of the asking query itself is listed too.
const OPEN_CURSORS = `SELECT count(*)::int AS n FROM pg_cursors WHERE name <> ''`;

/** Fails the test instead of hanging it when a connection or PGlite's lock was never given back. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** On the server, a pool of its own, named so its sessions can be found in pg_stat_activity. */
function ownPool(max: number, applicationName: string): pg.Pool | undefined {
  if (!usingPostgres) return undefined;
  return new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max,
    application_name: applicationName,
    // Fail fast instead of waiting forever for a client that was never given back.
    connectionTimeoutMillis: 2_000,
  });
}

describe('readReport and readReportPage', () => {
  const { database: t, schema } = useOrcaSchema({ buckets: [BUCKET], emptyTablesBeforeEach: true });

  /** States of the sessions of `applicationName` other than idle: a leaked transaction shows here. */
  const busySessions = async (applicationName: string): Promise<string[]> =>
    (
      await t.query<{ state: string }>(
        `SELECT state FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'`,
        [applicationName],
      )
    ).map((row) => row.state);

  /** A job with `count` rows of `kind` inserted in reverse key order, and a neighbour job with two rows. */
  async function seed<K extends ReportKind>(kind: K, count: number) {
    const jobId = await insertJob(t, schema, BUCKET);
    const other = await insertJob(t, schema, BUCKET);
    const rows = Array.from({ length: count }, (_v, index) => reportRow(kind, jobId, index));
    await insertReportRows(t, schema, kind, [...rows].reverse());
    await insertReportRows(t, schema, kind, [reportRow(kind, other, 0), reportRow(kind, other, 1000)]);
    return { jobId, expected: inKeyOrder(kind, rows) };
  }

  describe.each(REPORT_KINDS)('%s report', (kind) => {
    it('reads every row of the job, typed and complete, in primary-key order, in any batch size', async () => {
      // Prepare
      const { jobId, expected } = await seed(kind, 7);

      // Act
      const byBatch = await Promise.all([1, 2, 7, 1000].map((batchSize) => readAll(t.db, jobId, kind, { schema, batchSize })));
      const byDefault = await readAll(t.db, jobId, kind, { schema });

      // Assess
      expect(byDefault).toEqual(expected);
      for (const rows of byBatch) expect(rows).toEqual(expected);
      const first = byDefault[0] as unknown as Record<string, unknown>;
      expect(Object.keys(first)).toEqual(reportColumns(kind).map(camel));
      for (const column of reportColumns(kind)) {
        const value = first[camel(column)];
        if (/last_update$/.test(column)) expect(value).toBeInstanceOf(Date);
        else if (/storage_class_id$/.test(column)) expect(typeof value).toBe('number');
        else if (/(^job_id|size|size_in_bytes)$/.test(column)) expect(typeof value).toBe('bigint');
        else expect(typeof value).toBe('string');
      }
    });

    it('pages through every row exactly once with any page size, including 1', async () => {
      // Prepare
      const count = 13;
      const { jobId, expected } = await seed(kind, count);

      for (const pageSize of [1, 2, 5, count - 1, count, count + 1, 10_000]) {
        // Act
        const pages: ReportRows[ReportKind][][] = [];
        let cursor: string | null = null;
        do {
          const page: ReportPage<ReportKind> = await readReportPage(
            t.db,
            { jobId, kind },
            { schema, pageSize, cursor },
          );
          pages.push(page.rows);
          cursor = page.nextCursor;
          expect(pages.length).toBeLessThanOrEqual(count + 1);
        } while (cursor);

        // Assess
        expect(pages.flat()).toEqual(expected);
        expect(pages).toHaveLength(Math.ceil(count / pageSize));
        expect(pages.slice(0, -1).every((page) => page.length === pageSize)).toBe(true);
      }
    });
  });

  it('reads an empty report as no rows and one last page', async () => {
    const jobId = await insertJob(t, schema, BUCKET);

    for (const kind of REPORT_KINDS) {
      expect(await readAll(t.db, jobId, kind, { schema })).toEqual([]);
      expect(await readReportPage(t.db, { jobId, kind }, { schema })).toEqual({ rows: [], nextCursor: null });
    }
  });

  it('closes the cursor and ends the read-only transaction when the loop breaks early', async () => {
    // Prepare: on the server, a pool of one connection, so the next query runs on the connection
    // the report was read on.
    const { jobId, expected } = await seed('orphan', 10);
    const name = `orca-export-break-${process.pid}`;
    const pool = ownPool(1, name);
    const database = pool ?? t.db;
    try {
      // Act
      const seen: unknown[] = [];
      for await (const row of readReport(database, { jobId, kind: 'orphan' }, { schema, batchSize: 3 })) {
        seen.push(row);
        if (seen.length === 4) break;
      }

      // Assess
      expect(seen).toEqual(expected.slice(0, 4));
      const [state] = (
        await within(
          database.query(
            `SELECT (SELECT count(*)::int FROM pg_cursors WHERE name <> '') AS cursors, current_setting('transaction_read_only') AS read_only`,
          ),
          5_000,
          'a query after the early break',
        )
      ).rows as { cursors: number; read_only: string }[];
      expect(state).toEqual({ cursors: 0, read_only: 'off' });
      if (pool) {
        expect({ total: pool.totalCount, idle: pool.idleCount }).toEqual({ total: 1, idle: 1 });
        expect(await busySessions(name)).toEqual([]);
      }
      // The connection is usable for writes again: the read-only transaction is over.
      await database.query(`DELETE FROM "${schema}".reconcile_orphan_report WHERE job_id = $1`, [jobId]);
      expect(await readAll(database, jobId, 'orphan', { schema })).toEqual([]);
    } finally {
      await pool?.end();
    }
  });

  it('lets an error thrown in the loop through unchanged and still closes the cursor', async () => {
    const { jobId } = await seed('phantom', 5);
    const failure = new Error('consumer failed');
    const name = `orca-export-throw-${process.pid}`;
    const pool = ownPool(1, name);
    const database = pool ?? t.db;
    try {
      const consume = async () => {
        for await (const row of readReport(database, { jobId, kind: 'phantom' }, { schema, batchSize: 2 })) {
          if (row.keyPath) throw failure;
        }
      };

      await expect(consume()).rejects.toBe(failure);
      const { rows } = await within(database.query(OPEN_CURSORS), 5_000, 'a query after the error');
      expect(rows).toEqual([{ n: 0 }]);
      if (pool) expect(await busySessions(name)).toEqual([]);
    } finally {
      await pool?.end();
    }
  });

  it('wraps a failing statement in DatabaseError and gives the connection back', async () => {
    const jobId = await insertJob(t, schema, BUCKET);

    const error = await readAll(t.db, jobId, 'orphan', { schema: `${schema}_missing` }).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ operation: 'read report', sqlState: '42P01' });
    expect(await readAll(t.db, jobId, 'orphan', { schema })).toEqual([]);
  });

  it('does not exhaust a pool over many complete, abandoned and failed reads', async () => {
    // Prepare: a small pool whose connect fails fast instead of waiting for a leaked client.
    const { jobId, expected } = await seed('mismatch', 5);
    const name = `orca-export-many-${process.pid}`;
    const pool = ownPool(2, name);
    const database = pool ?? t.db;
    try {
      // Act
      for (let round = 0; round < 40; round += 1) {
        expect(await readAll(database, jobId, 'mismatch', { schema, batchSize: 2 })).toEqual(expected);
        for await (const row of readReport(database, { jobId, kind: 'mismatch' }, { schema, batchSize: 1 })) {
          expect(row.jobId).toBe(BigInt(jobId));
          break;
        }
        await expect(readAll(database, jobId, 'mismatch', { schema: `${schema}_missing` })).rejects.toBeInstanceOf(DatabaseError);
      }
      // Two readers at once on a pool of two.
      const both = await within(
        Promise.all([readAll(database, jobId, 'mismatch', { schema }), readAll(database, jobId, 'mismatch', { schema })]),
        5_000,
        'two concurrent reads',
      );

      // Assess
      expect(both).toEqual([expected, expected]);
      if (pool) {
        expect(pool.waitingCount).toBe(0);
        expect(pool.idleCount).toBe(pool.totalCount);
        expect(pool.totalCount).toBeLessThanOrEqual(2);
        expect(await busySessions(name)).toEqual([]);
      }
      const rows = (await within(database.query(OPEN_CURSORS), 5_000, 'a last query')).rows;
      expect(rows).toEqual([{ n: 0 }]);
    } finally {
      await pool?.end();
    }
  });

  // Real server only: the insert needs a second session while the cursor is open, and PGlite
  // holds its one session for the whole read.
  it.runIf(usingPostgres)('reads one snapshot: rows committed during the read are not seen', async () => {
    const { jobId, expected } = await seed('orphan', 6);
    const late = reportRow('orphan', jobId, 999);

    const seen: unknown[] = [];
    for await (const row of readReport(t.db, { jobId, kind: 'orphan' }, { schema, batchSize: 2 })) {
      if (seen.length === 0) await insertReportRows(t, schema, 'orphan', [late]);
      seen.push(row);
    }

    expect(seen).toEqual(expected);
    expect(await readAll(t.db, jobId, 'orphan', { schema })).toEqual([...expected, late]);
  });

  describe('invalid input', () => {
    const fieldOf = async (work: () => Promise<unknown>): Promise<string | undefined> => {
      const error = await work().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(InvalidInputError);
      return (error as InvalidInputError).field;
    };

    it('rejects a cursor that is not the nextCursor of this report as field "cursor"', async () => {
      const jobId = await insertJob(t, schema, BUCKET);
      const encode = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
      await insertReportRows(t, schema, 'orphan', [reportRow('orphan', jobId, 1), reportRow('orphan', jobId, 2)]);
      const orphanCursor = (await readReportPage(t.db, { jobId, kind: 'orphan' }, { schema, pageSize: 1 })).nextCursor;
      expect(orphanCursor).toEqual(expect.any(String));

      for (const cursor of ['not a cursor', '%%%', '', encode({ key: 'a' }), encode([1, 2, 3]), encode(['a', 'b']), orphanCursor!]) {
        expect(await fieldOf(() => readReportPage(t.db, { jobId, kind: 'phantom' }, { schema, cursor }))).toBe('cursor');
      }
    });

    it('rejects the cursor of one report kind when reading another with the same key length', async () => {
      // Phantom and mismatch reports both page on (collection_id, granule_id, key_path).
      const jobId = await insertJob(t, schema, BUCKET);
      await insertReportRows(t, schema, 'phantom', [reportRow('phantom', jobId, 1), reportRow('phantom', jobId, 2)]);
      const phantomCursor = (await readReportPage(t.db, { jobId, kind: 'phantom' }, { schema, pageSize: 1 })).nextCursor;
      expect(phantomCursor).toEqual(expect.any(String));
      expect(await fieldOf(() => readReportPage(t.db, { jobId, kind: 'mismatch' }, { schema, cursor: phantomCursor }))).toBe('cursor');
      const second = await readReportPage(t.db, { jobId, kind: 'phantom' }, { schema, pageSize: 1, cursor: phantomCursor });
      expect(second.rows).toHaveLength(1);
      expect(second.nextCursor).toBeNull();
    });

    it('rejects an unknown kind as field "kind"', async () => {
      for (const kind of ['nonsense', 'PHANTOM', '__proto__', 'toString', '', undefined]) {
        const query = { jobId: 1, kind } as unknown as { jobId: number; kind: ReportKind };
        expect(await fieldOf(() => readAll(t.db, 1, query.kind, { schema }))).toBe('kind');
        expect(await fieldOf(() => readReportPage(t.db, query, { schema }))).toBe('kind');
        expect(await fieldOf(async () => reportColumns(query.kind))).toBe('kind');
      }
    });

    it('rejects a job id that is not a positive safe integer as field "jobId"', async () => {
      for (const jobId of [0, -1, 1.5, Number.NaN, 2 ** 53, '7', null]) {
        const query = { jobId, kind: 'orphan' } as unknown as { jobId: number; kind: 'orphan' };
        expect(await fieldOf(() => readAll(t.db, query.jobId, 'orphan', { schema }))).toBe('jobId');
        expect(await fieldOf(() => readReportPage(t.db, query, { schema }))).toBe('jobId');
      }
    });

    it('rejects batch and page sizes out of range, and a bad schema name, naming each', async () => {
      for (const batchSize of [0, -1, 1.5, 100_001]) {
        expect(await fieldOf(() => readAll(t.db, 1, 'orphan', { schema, batchSize }))).toBe('batchSize');
      }
      for (const pageSize of [0, 10_001, 2.5]) {
        expect(await fieldOf(() => readReportPage(t.db, { jobId: 1, kind: 'orphan' }, { schema, pageSize }))).toBe('pageSize');
      }
      expect(await fieldOf(() => readAll(t.db, 1, 'orphan', { schema: 'no such"schema' }))).toBe('schema');
    });
  });
});
