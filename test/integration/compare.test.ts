import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import {
  AbortError,
  type ChangeType,
  type CompareJobsOptions,
  type ComparedJobs,
  type Database,
  DatabaseError,
  DifferentLocationsError,
  InvalidInputError,
  type JobComparison,
  JobNotFoundError,
  JobNotSuccessfulError,
  NoPreviousJobError,
  OrcaStatus,
  type ReportChange,
  type ReportKind,
  compareJobs,
  summarizeJobChanges,
} from '../../src/index.js';
import { REPORT_KINDS } from '../../src/read-report.js';
import { libraryPool, useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { Random } from '../helpers/datasets.js';
import {
  BYTE_ORDER_KEYS,
  HISTORY_BUCKET,
  OTHER_BUCKET,
  type JobSeed,
  generateHistory,
  loadHistory,
  loadJobs,
  referenceChanges,
  referenceComparison,
  referenceSummary,
} from '../helpers/job-changes.js';
import { insertReportRows, reportRow } from '../helpers/rows.js';

const SEEDS = Array.from({ length: 60 }, (_v, index) => index + 1);
const ALL_CHANGES: ChangeType[] = ['new', 'resolved', 'unchanged', 'changed'];
const ZERO = { new: 0, resolved: 0, unchanged: 0 };

async function readAll(database: Database, comparison: JobComparison, options: CompareJobsOptions): Promise<ReportChange[]> {
  const rows: ReportChange[] = [];
  for await (const row of compareJobs(database, comparison, options)) rows.push(row);
  return rows;
}

/** What a work rejected with, or a failure when it resolved. */
async function refusalOf(work: () => Promise<unknown>): Promise<unknown> {
  return work().then(
    () => expect.fail('expected a refusal'),
    (error: unknown) => error,
  );
}

const ERROR_CLASSES = { JobNotFoundError, JobNotSuccessfulError, NoPreviousJobError, DifferentLocationsError } as const;

describe('compareJobs and summarizeJobChanges', () => {
  const { database: t, schema, addPool } = useOrcaSchema({ buckets: [HISTORY_BUCKET, OTHER_BUCKET], emptyTablesBeforeEach: true });

  const read = (comparison: JobComparison, options: CompareJobsOptions = {}) => readAll(t.db, comparison, { schema, ...options });
  const summarize = (comparison: JobComparison) => summarizeJobChanges(t.db, comparison, { schema });

  const load = (...jobs: JobSeed[]) => loadJobs(t, schema, ...jobs);

  describe('agree with a reference computed from the rows, on random report histories', () => {
    const seen = new Map<string, number>();
    const note = (name: string) => seen.set(name, (seen.get(name) ?? 0) + 1);

    it.each(SEEDS)('seed %i: every job against its previous run and against earlier jobs', async (seed) => {
      // Prepare
      const random = new Random(seed * 7919);
      const jobs = await loadHistory(t, schema, generateHistory(seed));
      const ids = jobs.map((job) => job.id);
      const targets: JobComparison[] = [
        ...ids.map((jobId) => ({ jobId })),
        ...ids.slice(1).map((jobId) => ({ jobId, previousJobId: random.pick(ids.filter((id) => id < jobId)) })),
        { jobId: ids.at(-1)! + 1 },
        { jobId: ids.at(-1)!, previousJobId: Math.max(1, ids[0]! - 1) },
      ];

      for (const target of targets) {
        const expected = referenceComparison(jobs, target.jobId, target.previousJobId);
        const options: CompareJobsOptions = {
          ...(random.chance(0.4) && { kinds: random.shuffle(REPORT_KINDS).slice(0, random.int(1, 3)) }),
          ...(random.chance(0.5) && { changes: random.shuffle(ALL_CHANGES).slice(0, random.int(1, 4)) }),
          ...(random.chance(0.7) && { batchSize: random.int(1, 4) }),
        };

        if ('refusal' in expected) {
          // Act
          const streamed = await refusalOf(() => read(target, options));
          const summarized = await refusalOf(() => summarize(target));

          // Assess
          for (const error of [streamed, summarized]) {
            expect(error).toBeInstanceOf(ERROR_CLASSES[expected.refusal.name]);
            expect(error).toMatchObject(expected.refusal.fields);
          }
          note(expected.refusal.name);
          continue;
        }

        // Act
        const rows = await read(target, options);
        const summary = await summarize(target);

        // Assess
        const kinds = options.kinds ?? REPORT_KINDS;
        const changes = options.changes ?? ['new', 'resolved', 'changed'];
        expect(rows).toEqual(expected.changes.filter((row) => kinds.includes(row.kind) && changes.includes(row.change)));
        expect(summary).toEqual(referenceSummary(expected.previousJobId, expected.changes));
        for (const row of expected.changes) note(`${row.kind} ${row.change}`);
        if (expected.changes.length === 0) note('nothing to compare');
        else if (expected.changes.every((row) => row.change === 'unchanged')) note('identical reports');
        else if (expected.changes.every((row) => row.change === 'new')) note('all new');
        else if (expected.changes.every((row) => row.change === 'resolved')) note('all resolved');
        if (new Set(expected.changes.map((row) => `${row.kind} ${row.keyPath}`)).size < expected.changes.length) note('a key twice in one report');
        if (REPORT_KINDS.some((kind) => expected.changes.some((row) => row.kind !== kind && expected.changes.some((other) => other.kind === kind && other.keyPath === row.keyPath)))) {
          note('one key in two reports');
        }
        note(target.previousJobId === undefined ? 'previous run found' : 'previous job given');
      }
    });

    it('covered every change of every report, every refusal and every edge case', () => {
      const wanted = [
        ...REPORT_KINDS.flatMap((kind) => ['new', 'resolved', 'unchanged'].map((change) => `${kind} ${change}`)),
        'mismatch changed',
        'JobNotFoundError',
        'JobNotSuccessfulError',
        'NoPreviousJobError',
        'DifferentLocationsError',
        'nothing to compare',
        'identical reports',
        'all new',
        'all resolved',
        'a key twice in one report',
        'one key in two reports',
        'previous run found',
        'previous job given',
      ];
      expect(wanted.filter((name) => (seen.get(name) ?? 0) < 2)).toEqual([]);
    });
  });

  describe('edge cases', () => {
    it('gives nothing and zero counts for two empty reports', async () => {
      const [, job] = await load({}, {});

      expect(await read({ jobId: job!.id }, { changes: ALL_CHANGES })).toEqual([]);
      expect(await summarize({ jobId: job!.id })).toEqual({ previousJobId: job!.id - 1, phantoms: ZERO, orphans: ZERO, mismatches: { ...ZERO, changed: 0 } });
    });

    it('reads identical reports as unchanged only, and leaves them out by default', async () => {
      // Prepare
      const reports = { phantom: [reportRow('phantom', 0, 1)], orphan: [reportRow('orphan', 0, 2), reportRow('orphan', 0, 3)], mismatch: [reportRow('mismatch', 0, 4)] };
      const [previous, job] = await load({ reports }, { reports });

      // Act
      const byDefault = await read({ jobId: job!.id });
      const all = await read({ jobId: job!.id }, { changes: ALL_CHANGES });

      // Assess
      expect(byDefault).toEqual([]);
      expect(all.map((row) => [row.kind, row.change, row.keyPath])).toEqual([
        ['phantom', 'unchanged', 'dir/001.h5'],
        ['orphan', 'unchanged', 'dir/002.h5'],
        ['orphan', 'unchanged', 'dir/003.h5'],
        ['mismatch', 'unchanged', 'dir/004.h5'],
      ]);
      expect(all[0]).toEqual({ kind: 'phantom', change: 'unchanged', keyPath: 'dir/001.h5', current: job!.reports.phantom[0], previous: previous!.reports.phantom[0] });
      expect(await summarize({ jobId: job!.id })).toEqual({
        previousJobId: previous!.id,
        phantoms: { ...ZERO, unchanged: 1 },
        orphans: { ...ZERO, unchanged: 2 },
        mismatches: { ...ZERO, unchanged: 1, changed: 0 },
      });
    });

    it('reads every row as new after an empty report, and as resolved before one', async () => {
      const reports = { phantom: [reportRow('phantom', 0, 1)], orphan: [reportRow('orphan', 0, 2)], mismatch: [reportRow('mismatch', 0, 3)] };
      const [, full, , cleared] = await load({}, { reports }, { status: OrcaStatus.Error }, {});

      const added = await read({ jobId: full!.id });
      const removed = await read({ jobId: cleared!.id });

      expect(added.map((row) => [row.kind, row.change])).toEqual([['phantom', 'new'], ['orphan', 'new'], ['mismatch', 'new']]);
      expect(added.every((row) => row.previous === undefined && !('previous' in row))).toBe(true);
      expect(added[2]!.current).toEqual(full!.reports.mismatch[0]);
      expect(removed.map((row) => [row.kind, row.change])).toEqual([['phantom', 'resolved'], ['orphan', 'resolved'], ['mismatch', 'resolved']]);
      expect(removed.every((row) => !('current' in row))).toBe(true);
      expect(removed[1]!.previous).toEqual(full!.reports.orphan[0]);
      // The error job between them is skipped: the previous run is the last success.
      expect((await summarize({ jobId: cleared!.id })).previousJobId).toBe(full!.id);
    });

    it('counts a mismatch whose discrepancy_type changed as changed, and one with other values but the same type as unchanged', async () => {
      // Prepare
      const before = reportRow('mismatch', 0, 1);
      const sameType = reportRow('mismatch', 0, 2);
      const [previous, job] = await load(
        { reports: { mismatch: [before, sameType] } },
        { reports: { mismatch: [{ ...before, discrepancyType: 'etag' }, { ...sameType, s3Etag: '"other"', s3SizeInBytes: 7n }] } },
      );

      // Act
      const rows = await read({ jobId: job!.id }, { changes: ALL_CHANGES });

      // Assess
      expect(rows).toEqual([
        { kind: 'mismatch', change: 'changed', keyPath: before.keyPath, current: job!.reports.mismatch[0], previous: previous!.reports.mismatch[0] },
        { kind: 'mismatch', change: 'unchanged', keyPath: sameType.keyPath, current: job!.reports.mismatch[1], previous: previous!.reports.mismatch[1] },
      ]);
      const changed = rows[0]!;
      if (changed.kind === 'mismatch' && changed.change === 'changed') {
        expect([changed.previous.discrepancyType, changed.current.discrepancyType]).toEqual(['etag, size_in_bytes, storage_class', 'etag']);
      }
      expect((await summarize({ jobId: job!.id })).mismatches).toEqual({ new: 0, resolved: 0, unchanged: 1, changed: 1 });
    });

    it('matches a key only within its report: a phantom that became an orphan is resolved in one, new in the other', async () => {
      const key = 'granules/moved.h5';
      const [, job] = await load(
        { reports: { phantom: [{ ...reportRow('phantom', 0, 1), keyPath: key }] } },
        { reports: { orphan: [{ ...reportRow('orphan', 0, 1), keyPath: key }], mismatch: [{ ...reportRow('mismatch', 0, 1), keyPath: key }] } },
      );

      const rows = await read({ jobId: job!.id });

      expect(rows.map((row) => [row.kind, row.change, row.keyPath])).toEqual([
        ['phantom', 'resolved', key],
        ['orphan', 'new', key],
        ['mismatch', 'new', key],
      ]);
    });

    it('pairs rows that share a key_path within one report in collection and granule order', async () => {
      // Prepare: the same key under two granules before, under one (the second) now.
      const row = (granuleId: string) => ({ ...reportRow('phantom', 0, 1), granuleId });
      const [previous, job] = await load({ reports: { phantom: [row('G-b'), row('G-a')] } }, { reports: { phantom: [row('G-b')] } });

      // Act
      const rows = await read({ jobId: job!.id }, { changes: ALL_CHANGES });

      // Assess: the first of each side are paired, the second one before is resolved.
      expect(rows).toEqual(referenceChanges('phantom', job!.reports.phantom, previous!.reports.phantom));
      const granule = (row: unknown) => (row as { granuleId: string } | undefined)?.granuleId;
      expect(rows.map((change) => [change.change, granule(change.current), granule(change.previous)])).toEqual([
        ['unchanged', 'G-b', 'G-a'],
        ['resolved', undefined, 'G-b'],
      ]);
    });

    it('orders keys byte-wise, whatever JavaScript or the database collation would do', async () => {
      const orphans = BYTE_ORDER_KEYS.map((keyPath, index) => ({ ...reportRow('orphan', 0, index), keyPath }));
      const [, job] = await load({}, { reports: { orphan: orphans } });

      const rows = await read({ jobId: job!.id });

      expect(rows.map((row) => row.keyPath)).toEqual(['order/Z.h5', 'order/z.h5', 'order/\uFF21.h5', 'order/\u{1F600}.h5']);
    });

    it('returns int8 columns as exact bigint values, timestamps as Date and class ids as numbers', async () => {
      const [, job] = await load({}, { reports: { phantom: [reportRow('phantom', 0, 5)] } });

      const [row] = await read({ jobId: job!.id });

      expect(row!.current).toEqual(job!.reports.phantom[0]);
      const phantom = row!.current as ReturnType<typeof reportRow<'phantom'>>;
      expect(phantom.orcaSize).toBe(2n ** 53n + 13n);
      expect(phantom.jobId).toBe(BigInt(job!.id));
      expect(phantom.orcaLastUpdate).toBeInstanceOf(Date);
      expect(typeof phantom.orcaStorageClassId).toBe('number');
    });

    it('reads the kinds asked for, in report order whatever the order asked, and only the changes asked for', async () => {
      const [, job] = await load(
        { reports: { phantom: [reportRow('phantom', 0, 1)], orphan: [reportRow('orphan', 0, 1)] } },
        { reports: { phantom: [reportRow('phantom', 0, 2)], orphan: [reportRow('orphan', 0, 2)], mismatch: [reportRow('mismatch', 0, 2)] } },
      );

      const rows = await read({ jobId: job!.id }, { kinds: ['mismatch', 'phantom', 'mismatch'], changes: ['new'] });

      expect(rows.map((row) => [row.kind, row.change])).toEqual([['phantom', 'new'], ['mismatch', 'new']]);
    });
  });

  describe('choosing the previous job', () => {
    it('takes the highest successful job below of the same bucket; another job when given', async () => {
      // Prepare: success, success (other bucket), error, success, the job, a later success.
      const jobs = await load({}, { bucket: OTHER_BUCKET }, { status: OrcaStatus.Error }, { reports: { orphan: [reportRow('orphan', 0, 1)] } }, {}, {});
      const [first, , , previous, job] = jobs;
      const calls: ComparedJobs[] = [];

      // Act
      const rows = await read({ jobId: job!.id }, { onJobs: (jobs) => calls.push(jobs) });
      const given = await read({ jobId: job!.id, previousJobId: first!.id });

      // Assess
      expect(calls).toEqual([{ jobId: job!.id, previousJobId: previous!.id, orcaArchiveLocation: HISTORY_BUCKET }]);
      expect(rows.map((row) => [row.kind, row.change])).toEqual([['orphan', 'resolved']]);
      expect(given).toEqual([]);
      expect((await summarize({ jobId: job!.id })).previousJobId).toBe(previous!.id);
      expect((await summarize({ jobId: job!.id, previousJobId: first!.id })).previousJobId).toBe(first!.id);
    });

    it('lets an error thrown by onJobs through as it is, and reads nothing', async () => {
      const [, job] = await load({}, { reports: { orphan: [reportRow('orphan', 0, 1)] } });
      const failure = new Error('onJobs failed');
      const seen: ReportChange[] = [];

      const error = await refusalOf(async () => {
        for await (const row of compareJobs(t.db, { jobId: job!.id }, { schema, onJobs: () => { throw failure; } })) seen.push(row);
      });

      expect(error).toBe(failure);
      expect(seen).toEqual([]);
      expect(await read({ jobId: job!.id })).toHaveLength(1);
    });

    it('refuses, with a typed error carrying the jobs, before reading any report', async () => {
      // Prepare
      const [first, other, failed, job, staged] = await load({}, { bucket: OTHER_BUCKET }, { status: OrcaStatus.Error }, {}, { status: OrcaStatus.Staged });
      const missing = staged!.id + 1;
      const cases: [JobComparison, unknown, string][] = [
        [{ jobId: first!.id }, new NoPreviousJobError(first!.id, HISTORY_BUCKET), `reconcile_job ${first!.id} has no previous job with status success (5) for "${HISTORY_BUCKET}" to be compared with`],
        [{ jobId: missing }, new JobNotFoundError(missing), `reconcile_job ${missing} does not exist`],
        [{ jobId: staged!.id }, new JobNotSuccessfulError(staged!.id, OrcaStatus.Staged), `reconcile_job ${staged!.id} has status 2, not success (5): its reports cannot be compared`],
        [{ jobId: job!.id, previousJobId: failed!.id }, new JobNotSuccessfulError(failed!.id, OrcaStatus.Error), `reconcile_job ${failed!.id} has status 4`],
        [{ jobId: job!.id, previousJobId: first!.id - 1 }, new JobNotFoundError(first!.id - 1), 'does not exist'],
        [
          { jobId: job!.id, previousJobId: other!.id },
          new DifferentLocationsError(job!.id, HISTORY_BUCKET, other!.id, OTHER_BUCKET),
          `reconcile_job ${job!.id} belongs to "${HISTORY_BUCKET}" and reconcile_job ${other!.id} to "${OTHER_BUCKET}": only jobs of one bucket can be compared`,
        ],
      ];

      for (const [comparison, expected, message] of cases) {
        // Act
        const streamed = await refusalOf(() => read(comparison));
        const summarized = await refusalOf(() => summarize(comparison));

        // Assess
        for (const error of [streamed, summarized]) {
          expect(error).toBeInstanceOf((expected as object).constructor);
          expect(error).toMatchObject({ ...(expected as object) });
          expect((error as Error).message).toContain(message);
        }
      }
    });
  });

  describe('reading', () => {
    /** On the server, a pool of its own, so the next query runs on the connection the changes were read on. */
    const ownPool = (): pg.Pool | undefined =>
      usingPostgres ? new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 1, connectionTimeoutMillis: 2_000 }) : undefined;

    it('closes the cursor and ends the transaction when the loop breaks early', async () => {
      // Prepare
      const orphans = Array.from({ length: 9 }, (_v, index) => reportRow('orphan', 0, index));
      const [, job] = await load({}, { reports: { orphan: orphans, mismatch: [reportRow('mismatch', 0, 1)] } });
      const pool = ownPool();
      const database = pool ?? t.db;
      try {
        // Act
        const seen: ReportChange[] = [];
        for await (const row of compareJobs(database, { jobId: job!.id }, { schema, batchSize: 2 })) {
          seen.push(row);
          if (seen.length === 3) break;
        }

        // Assess
        expect(seen.map((row) => row.keyPath)).toEqual(['dir/000.h5', 'dir/001.h5', 'dir/002.h5']);
        const { rows } = await database.query(
          `SELECT (SELECT count(*)::int FROM pg_cursors WHERE name <> '') AS cursors, current_setting('transaction_read_only') AS read_only`,
        );
        expect(rows).toEqual([{ cursors: 0, read_only: 'off' }]);
        if (pool) expect({ total: pool.totalCount, idle: pool.idleCount }).toEqual({ total: 1, idle: 1 });
      } finally {
        await pool?.end();
      }
    });

    it('wraps a failing statement in DatabaseError naming the operation', async () => {
      const missing = `${schema}_missing`;

      const streamed = await refusalOf(() => readAll(t.db, { jobId: 2, previousJobId: 1 }, { schema: missing }));
      const summarized = await refusalOf(() => summarizeJobChanges(t.db, { jobId: 2 }, { schema: missing }));

      expect(streamed).toBeInstanceOf(DatabaseError);
      expect(streamed).toMatchObject({ operation: 'compare jobs', sqlState: '42P01' });
      expect(summarized).toMatchObject({ operation: 'summarize job changes', sqlState: '42P01' });
    });

    it('refuses to start with a signal that is already aborted', async () => {
      const [, job] = await load({}, { reports: { orphan: [reportRow('orphan', 0, 1)] } });
      const signal = AbortSignal.abort(new Error('shutting down'));

      const streamed = await refusalOf(() => read({ jobId: job!.id }, { signal }));
      const summarized = await refusalOf(() => summarizeJobChanges(t.db, { jobId: job!.id }, { schema, signal }));

      for (const error of [streamed, summarized]) {
        expect(error).toBeInstanceOf(AbortError);
        expect(error).toMatchObject({ name: 'AbortError', code: 'ABORTED' });
        expect((error as Error).message).toContain('shutting down');
      }
    });

    describe('aborted on the server', () => {
      const applicationName = `orca-compare-abort-${process.pid}`;
      /** The library's pool on the server, its sessions named so the test can find them. */
      const libraryDatabase = () => addPool(libraryPool(applicationName));
      const librarySessions = async () =>
        t.query<{ state: string; wait_event_type: string | null }>(
          'SELECT state, wait_event_type FROM pg_stat_activity WHERE application_name = $1',
          [applicationName],
        );

      it.runIf(usingPostgres)('stops the changes between rows and ends the transaction', async () => {
        // Prepare
        const [, job] = await load({}, { reports: { orphan: Array.from({ length: 20 }, (_v, index) => reportRow('orphan', 0, index)) } });
        const pool = libraryDatabase();
        const controller = new AbortController();
        const seen: string[] = [];

        // Act
        const error = await refusalOf(async () => {
          for await (const row of compareJobs(pool, { jobId: job!.id }, { schema, batchSize: 5, signal: controller.signal })) {
            seen.push(row.keyPath);
            if (seen.length === 3) controller.abort();
          }
        });

        // Assess
        expect(error).toBeInstanceOf(AbortError);
        expect(seen).toHaveLength(3);
        expect((await librarySessions()).every((session) => session.state === 'idle')).toBe(true);
        expect(pool.totalCount - pool.idleCount).toBe(0);
      });

      it.runIf(usingPostgres)('cancels the statement the server is running, for the stream and for the counts', async () => {
        // Prepare: another session holds the orphan report, so reading it waits on the server.
        const [, job] = await load({}, { reports: { orphan: [reportRow('orphan', 0, 1)] } });
        const pool = libraryDatabase();
        const holder = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await holder.connect();
        try {
          await holder.query('BEGIN');
          await holder.query(`LOCK TABLE "${schema}".reconcile_orphan_report IN ACCESS EXCLUSIVE MODE`);
          const work = [
            (signal: AbortSignal) => readAll(pool, { jobId: job!.id }, { schema, kinds: ['orphan'], signal }),
            (signal: AbortSignal) => summarizeJobChanges(pool, { jobId: job!.id }, { schema, signal }),
          ];
          for (const start of work) {
            const controller = new AbortController();
            const pending = refusalOf(() => start(controller.signal));
            await vi.waitFor(async () => expect((await librarySessions()).map((session) => session.wait_event_type)).toContain('Lock'), {
              timeout: 10_000,
              interval: 20,
            });

            // Act
            controller.abort();
            const error = await pending;

            // Assess
            expect(error).toBeInstanceOf(AbortError);
            expect((await librarySessions()).every((session) => session.state === 'idle')).toBe(true);
          }
        } finally {
          await holder.query('ROLLBACK');
          await holder.end();
        }
        expect(await read({ jobId: job!.id })).toHaveLength(1);
      });
    });

    // Real server only: the insert needs a second session while the first report is read.
    it.runIf(usingPostgres)('reads every report in one snapshot: rows committed meanwhile are not seen', async () => {
      // Prepare
      const [, job] = await load({}, { reports: { phantom: [reportRow('phantom', 0, 1), reportRow('phantom', 0, 2)] } });

      // Act
      const seen: ReportChange[] = [];
      for await (const row of compareJobs(t.db, { jobId: job!.id }, { schema, batchSize: 1 })) {
        if (seen.length === 0) await insertReportRows(t, schema, 'orphan', [reportRow('orphan', job!.id, 7)]);
        seen.push(row);
      }

      // Assess
      expect(seen.map((row) => row.kind)).toEqual(['phantom', 'phantom']);
      expect((await read({ jobId: job!.id })).map((row) => row.kind)).toEqual(['phantom', 'phantom', 'orphan']);
    });
  });

  describe('invalid input', () => {
    const fieldOf = async (work: () => Promise<unknown>): Promise<string | undefined> => {
      const error = await refusalOf(work);
      expect(error).toBeInstanceOf(InvalidInputError);
      return (error as InvalidInputError).field;
    };

    it('names the field of every bad argument, before any query', async () => {
      const cases: [string, JobComparison, Record<string, unknown>][] = [
        ['comparison', null as unknown as JobComparison, {}],
        ['comparison', 42 as unknown as JobComparison, {}],
        ['jobId', { jobId: 0 }, {}],
        ['jobId', { jobId: '7' } as unknown as JobComparison, {}],
        ['previousJobId', { jobId: 5, previousJobId: 1.5 }, {}],
        ['previousJobId', { jobId: 5, previousJobId: 5 }, {}],
        ['previousJobId', { jobId: 5, previousJobId: 6 }, {}],
        ['schema', { jobId: 5 }, { schema: 'bad"name' }],
        ['kinds', { jobId: 5 }, { kinds: [] }],
        ['kinds', { jobId: 5 }, { kinds: 'phantom' }],
        ['kinds', { jobId: 5 }, { kinds: ['phantom', 'nonsense'] }],
        ['changes', { jobId: 5 }, { changes: [] }],
        ['changes', { jobId: 5 }, { changes: ['new', 'gone'] }],
        ['batchSize', { jobId: 5 }, { batchSize: 0 }],
        ['batchSize', { jobId: 5 }, { batchSize: 100_001 }],
        ['onJobs', { jobId: 5 }, { onJobs: 'log' }],
        ['signal', { jobId: 5 }, { signal: { aborted: true } }],
      ];

      for (const [field, comparison, options] of cases) {
        expect(await fieldOf(() => readAll(t.db, comparison, { schema, ...options } as CompareJobsOptions)), field).toBe(field);
        if (!['kinds', 'changes', 'batchSize', 'onJobs'].includes(field)) {
          expect(await fieldOf(() => summarizeJobChanges(t.db, comparison, { schema, ...options })), field).toBe(field);
        }
      }
    });
  });

  it('agrees with the reference on a hand-made pair in every kind (the reference itself)', () => {
    const kinds: ReportKind[] = [...REPORT_KINDS];
    const rows = kinds.flatMap((kind) => referenceChanges(kind, [reportRow(kind, 2, 1)], [reportRow(kind, 1, 2)]));
    expect(rows.map((row) => [row.kind, row.change, row.keyPath])).toEqual(
      kinds.flatMap((kind) => [
        [kind, 'new', 'dir/001.h5'],
        [kind, 'resolved', 'dir/002.h5'],
      ]),
    );
    expect(referenceSummary(1, rows).mismatches).toEqual({ new: 1, resolved: 1, unchanged: 0, changed: 0 });
  });
});
