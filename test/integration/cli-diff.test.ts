import { readFile, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { REPORT_KINDS, reportColumns } from '../../src/read-report.js';
import { type ChangeType, OrcaStatus, type ReportChange, type ReportKind, compareJobs, summarizeJobChanges } from '../../src/index.js';
import {
  asJson,
  expectUsageError,
  memoryIO,
  parseCsvStrict,
  parseExact,
  runInMemory as run,
  tableRows,
  useTempDirectory,
} from '../helpers/cli-io.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { HISTORY_BUCKET, type JobSeed, OTHER_BUCKET, loadJobs } from '../helpers/job-changes.js';
import { camel, reportRow } from '../helpers/rows.js';

/** Flag checks fail before any connection, so these tests need no server. */
const UNUSED_URL = 'postgres://orca@127.0.0.1:1/orca';
const ALL_CHANGES: ChangeType[] = ['new', 'resolved', 'unchanged', 'changed'];

/** Keys that break csv writers and terminals. */
const TRICKY = ['comma,in/key.h5', 'quote"inside.h5', 'line\nfeed.h5', 'crlf\r\nkey.h5', 'escape/\u001b[31mred.h5', 'bidi/\u202egnp.exe', 'ünïcødé/😀.h5'];

/** kind, change, key_path, then current_ and previous_ columns, as the command names them. */
const flatColumns = (columns: readonly string[]) => [
  'kind',
  'change',
  'key_path',
  ...columns.map((column) => `current_${column}`),
  ...columns.map((column) => `previous_${column}`),
];
const unionColumns = (kinds: readonly ReportKind[]) => [...new Set(kinds.flatMap((kind) => reportColumns(kind)))];

/** A value as csv and table print it. */
const cellText = (value: unknown): string => (value instanceof Date ? value.toISOString() : value === undefined ? '' : String(value));

/** The cells a change row must have under `columns`. */
function expectedCells(row: ReportChange, columns: readonly string[]): string[] {
  const side = (report: unknown) => columns.map((column) => cellText((report as Record<string, unknown> | undefined)?.[camel(column)]));
  return [row.kind, row.change, row.keyPath, ...side(row.current), ...side(row.previous)];
}

describe('orca-reconcile diff', () => {
  // The CLI takes a URL, so only the real server can answer it.
  const { database: t, schema } = useOrcaSchema({
    prefix: 'orca_cli_diff',
    buckets: [HISTORY_BUCKET, OTHER_BUCKET],
    serverOnly: true,
    emptyTablesBeforeEach: true,
  });
  const directory = useTempDirectory('orca-cli-diff-');
  const databaseUrl = process.env.DATABASE_URL ?? UNUSED_URL;

  const diff = (jobId: number | string, ...extra: string[]) => [
    'diff',
    '--database-url',
    databaseUrl,
    '--schema',
    schema,
    '--job-id',
    String(jobId),
    ...extra,
  ];

  const load = (...jobs: JobSeed[]) => loadJobs(t, schema, ...jobs);

  /** Two successful jobs whose reports differ in every way, tricky text in their keys. */
  async function seedPair() {
    const rows = <K extends ReportKind>(kind: K, from: number, to: number) =>
      Array.from({ length: to - from }, (_v, offset) => ({ ...reportRow(kind, 0, from + offset), keyPath: TRICKY[from + offset]! }));
    const previousMismatches = rows('mismatch', 0, 4);
    const [previous, job] = await load(
      { reports: { phantom: rows('phantom', 0, 4), orphan: rows('orphan', 2, 6), mismatch: previousMismatches } },
      {
        reports: {
          phantom: rows('phantom', 2, 7),
          orphan: rows('orphan', 0, 3),
          // The first keeps its type, the second changes it, the rest are new or gone.
          mismatch: [previousMismatches[0]!, { ...previousMismatches[1]!, discrepancyType: 'size_in_bytes' }, ...rows('mismatch', 5, 7)],
        },
      },
    );
    const expected = async (changes: ChangeType[] = ['new', 'resolved', 'changed'], kinds: ReportKind[] = [...REPORT_KINDS]) => {
      const read: ReportChange[] = [];
      for await (const row of compareJobs(t.db, { jobId: job!.id }, { schema, changes, kinds })) read.push(row);
      return read;
    };
    return { previous: previous!, job: job!, expected };
  }

  it.runIf(usingPostgres)('writes csv that a strict RFC 4180 reader reads back: the columns of every kind asked for', async () => {
    // Prepare
    const { job, previous, expected } = await seedPair();

    // Act
    const all = await run(diff(job.id, '--format', 'csv', '--batch-size', '2'));
    const mismatches = await run(diff(job.id, '--format', 'csv', '--kind', 'mismatch', '--change', ...ALL_CHANGES));

    // Assess
    expect(all.code).toBe(0);
    expect(all.stderrLines()).toEqual([`comparing job ${job.id} with job ${previous.id} of ${HISTORY_BUCKET}`]);
    const [header, ...records] = parseCsvStrict(all.stdout());
    expect(header).toEqual(flatColumns(unionColumns(REPORT_KINDS)));
    const rows = await expected();
    expect(records).toEqual(rows.map((row) => expectedCells(row, unionColumns(REPORT_KINDS))));
    expect(new Set(rows.map((row) => row.change))).toEqual(new Set(['new', 'resolved', 'changed']));
    const [mismatchHeader, ...mismatchRecords] = parseCsvStrict(mismatches.stdout());
    expect(mismatchHeader).toEqual(flatColumns(reportColumns('mismatch')));
    expect(mismatchRecords).toEqual((await expected(ALL_CHANGES, ['mismatch'])).map((row) => expectedCells(row, reportColumns('mismatch'))));
    expect(mismatchRecords.map((record) => record[1])).toContain('unchanged');
  });

  it.runIf(usingPostgres)('writes ndjson and json that parse back to the library rows, int8 values exact', async () => {
    const { job, expected } = await seedPair();

    const ndjson = await run(diff(job.id, '--format', 'ndjson', '--batch-size', '3', '--change', ...ALL_CHANGES));
    const json = await run(diff(job.id, '--format', 'json', '--batch-size', '3', '--change', ...ALL_CHANGES));

    expect([ndjson.code, json.code]).toEqual([0, 0]);
    const lines = ndjson.stdout().split('\n');
    expect(lines.pop()).toBe('');
    const rows = await expected(ALL_CHANGES);
    expect(lines.map(parseExact)).toEqual(asJson(rows));
    expect(parseExact(json.stdout())).toEqual(asJson(rows));
    expect(ndjson.stdout()).toMatch(/:(?:9007199254740\d{3}|4611686018427387\d{3})[,}]/);
    // A new row has no previous, a resolved one no current.
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.filter((row) => row['change'] === 'new').every((row) => !('previous' in row) && 'current' in row)).toBe(true);
    expect(parsed.filter((row) => row['change'] === 'resolved').every((row) => !('current' in row) && 'previous' in row)).toBe(true);
  });

  it.runIf(usingPostgres)('prints a table block per kind with its own columns, control characters escaped', async () => {
    const { job, expected } = await seedPair();

    const result = await run(diff(job.id, '--format', 'table'));

    expect(result.code).toBe(0);
    const text = result.stdout();
    // eslint-disable-next-line no-control-regex -- no raw control character may reach the terminal
    expect(text.replace(/\n/g, '')).not.toMatch(/[\u0000-\u001f\u007f\u202e]/);
    const rows = tableRows(text);
    const headers = rows.filter((cells) => cells[0] === 'kind');
    expect(headers).toEqual(REPORT_KINDS.map((kind) => flatColumns(reportColumns(kind))));
    const body = rows.filter((cells) => cells[0] !== 'kind');
    expect(body.map((cells) => [cells[0], cells[1]])).toEqual((await expected()).map((row) => [row.kind, row.change]));
    expect(text).toContain('escape/\\u001b[31mred.h5');
    expect(text).toContain('line\\nfeed.h5');
  });

  it.runIf(usingPostgres)('writes no changes as a header, an empty array, nothing, and a short table', async () => {
    const reports = { orphan: [reportRow('orphan', 0, 1)] };
    const [, job] = await load({ reports }, { reports });

    const csv = await run(diff(job!.id, '--format', 'csv', '--kind', 'orphan'));
    const json = await run(diff(job!.id, '--format', 'json'));
    const ndjson = await run(diff(job!.id, '--format', 'ndjson'));
    const table = await run(diff(job!.id, '--format', 'table'));

    expect([csv.code, json.code, ndjson.code, table.code]).toEqual([0, 0, 0, 0]);
    expect(parseCsvStrict(csv.stdout())).toEqual([flatColumns(reportColumns('orphan'))]);
    expect(JSON.parse(json.stdout())).toEqual([]);
    expect(ndjson.stdout()).toBe('');
    expect(tableRows(table.stdout())).toEqual([['kind', 'change', 'key_path']]);
  });

  it.runIf(usingPostgres)('compares with the job given by --since, and defaults to csv when piped, a table on a terminal', async () => {
    const [first, , job] = await load({ reports: { orphan: [reportRow('orphan', 0, 1)] } }, {}, {});

    const since = await run(diff(job!.id, '--since', String(first!.id)));
    const terminal = await run(diff(job!.id, '--since', String(first!.id)), { tty: true });

    expect(since.stderrLines()).toEqual([`comparing job ${job!.id} with job ${first!.id} of ${HISTORY_BUCKET}`]);
    const [header, ...records] = parseCsvStrict(since.stdout());
    expect(header![0]).toBe('kind');
    expect(records.map((record) => record.slice(0, 3))).toEqual([['orphan', 'resolved', 'dir/001.h5']]);
    expect(tableRows(terminal.stdout()).map((cells) => cells.slice(0, 3))).toEqual([
      ['kind', 'change', 'key_path'],
      ['orphan', 'resolved', 'dir/001.h5'],
    ]);
  });

  describe('--summary', () => {
    it.runIf(usingPostgres)('prints the object summarizeJobChanges returns as json when piped, a table on a terminal', async () => {
      // Prepare
      const { job, previous } = await seedPair();
      const summary = await summarizeJobChanges(t.db, { jobId: job.id }, { schema });

      // Act
      const piped = await run(diff(job.id, '--summary'));
      const json = await run(diff(job.id, '--summary', '--format', 'json'), { tty: true });
      const terminal = await run(diff(job.id, '--summary'), { tty: true });

      // Assess
      expect([piped.code, json.code, terminal.code]).toEqual([0, 0, 0]);
      expect(JSON.parse(piped.stdout())).toEqual(summary);
      expect(json.stdout()).toBe(piped.stdout());
      expect(summary).toEqual({
        previousJobId: previous.id,
        phantoms: { new: 3, resolved: 2, unchanged: 2 },
        orphans: { new: 2, resolved: 3, unchanged: 1 },
        mismatches: { new: 2, resolved: 2, unchanged: 1, changed: 1 },
      });
      expect(terminal.stdout().split('\n')[0]).toBe(`job ${job.id} compared with job ${previous.id}`);
      expect(tableRows(terminal.stdout())).toEqual([
        ['report', 'new', 'resolved', 'unchanged', 'changed'],
        ['phantom', '3', '2', '2', ''],
        ['orphan', '2', '3', '1', ''],
        ['mismatch', '2', '2', '1', '1'],
      ]);
      expect(piped.stderr()).toBe('');
    });

    it.runIf(usingPostgres)('writes the summary to --out and says so on stderr', async () => {
      const [, job] = await load({}, { reports: { phantom: [reportRow('phantom', 0, 1)] } });
      const file = join(directory(), 'summary.json');

      const result = await run(diff(job!.id, '--summary', '--out', file));

      expect(result.code).toBe(0);
      expect(result.stdout()).toBe('');
      expect(result.stderrLines()).toEqual([`wrote the summary to ${file}`]);
      expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ phantoms: { new: 1, resolved: 0, unchanged: 0 } });
    });
  });

  it.runIf(usingPostgres)('with --out writes the file and reports on stderr only', async () => {
    const { job, previous, expected } = await seedPair();
    const file = join(directory(), 'changes.ndjson');
    await writeFile(file, 'x'.repeat(50_000));

    const result = await run(diff(job.id, '--out', file, '--format', 'ndjson', '--batch-size', '2'));

    expect(result.code).toBe(0);
    expect(result.stdout()).toBe('');
    const lines = (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength((await expected()).length);
    const stderr = result.stderrLines();
    expect(stderr[0]).toBe(`comparing job ${job.id} with job ${previous.id} of ${HISTORY_BUCKET}`);
    expect(stderr.at(-1)).toBe(`wrote ${lines.length} rows to ${file}`);
  });

  it.runIf(usingPostgres)('refuses jobs that cannot be compared with exit 1 and one line, leaving an --out file untouched', async () => {
    // Prepare
    const [first, other, failed, job] = await load({}, { bucket: OTHER_BUCKET }, { status: OrcaStatus.Error }, {});
    const file = join(directory(), 'keep.csv');
    await writeFile(file, 'keep me');
    const cases: [string[], string][] = [
      [diff(first!.id, '--out', file), `reconcile_job ${first!.id} has no previous job with status success (5) for "${HISTORY_BUCKET}" to be compared with`],
      [diff(failed!.id, '--out', file), `reconcile_job ${failed!.id} has status 4, not success (5): its reports cannot be compared`],
      [diff(job!.id, '--since', String(other!.id), '--out', file), `reconcile_job ${job!.id} belongs to "${HISTORY_BUCKET}" and reconcile_job ${other!.id} to "${OTHER_BUCKET}": only jobs of one bucket can be compared`],
      [diff(job!.id + 1, '--out', file), `reconcile_job ${job!.id + 1} does not exist`],
      [diff(job!.id + 1, '--summary', '--out', file), `reconcile_job ${job!.id + 1} does not exist`],
    ];

    for (const [argv, message] of cases) {
      // Act
      const result = await run(argv);

      // Assess
      expect(result.code, message).toBe(1);
      expect(result.stdout()).toBe('');
      expect(result.stderrLines()).toEqual([`orca-reconcile: ${message}`]);
    }
    expect(await readFile(file, 'utf8')).toBe('keep me');
  });

  it.runIf(usingPostgres)('stops quietly with exit 0 when the reader closed the pipe (EPIPE)', async () => {
    const orphans = Array.from({ length: 30 }, (_v, index) => reportRow('orphan', 0, index));
    const [, job] = await load({}, { reports: { orphan: orphans } });
    let chunks = 0;
    const stdout = new Writable({
      write(_chunk, _encoding, callback) {
        chunks += 1;
        if (chunks > 2) callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
        else callback();
      },
    });
    const stderr = memoryIO();

    const code = await runCli(diff(job!.id, '--format', 'ndjson', '--batch-size', '1'), { ...stderr.io, stdout });

    expect(code).toBe(0);
    expect(stderr.stderrLines()).toHaveLength(1);
    // The third block failed; nothing was written after it.
    expect(chunks).toBe(3);
  });

  describe('bad command lines', () => {
    const valid = ['--database-url', UNUSED_URL, '--job-id', '5'];
    const cases: [string, string[], string][] = [
      ['missing --job-id', ['diff', '--database-url', UNUSED_URL], '--job-id'],
      ['--job-id abc', ['diff', '--database-url', UNUSED_URL, '--job-id', 'abc'], '--job-id'],
      ['--since 0', ['diff', ...valid, '--since', '0'], '--since'],
      ['--since abc', ['diff', ...valid, '--since', 'abc'], '--since'],
      ['--since equal to --job-id', ['diff', ...valid, '--since', '5'], '--since'],
      ['--since above --job-id', ['diff', ...valid, '--since', '9'], '--since'],
      ['--kind nonsense', ['diff', ...valid, '--kind', 'nonsense'], '--kind'],
      ['--change nonsense', ['diff', ...valid, '--change', 'gone'], '--change'],
      ['--format nonsense', ['diff', ...valid, '--format', 'xml'], '--format'],
      ['--summary with --kind', ['diff', ...valid, '--summary', '--kind', 'orphan'], '--kind'],
      ['--summary with --change', ['diff', ...valid, '--summary', '--change', 'new'], '--change'],
      ['--summary with --format csv', ['diff', ...valid, '--summary', '--format', 'csv'], '--format csv'],
      ['--summary with --format ndjson', ['diff', ...valid, '--summary', '--format', 'ndjson'], '--format ndjson'],
      ['--batch-size 0', ['diff', ...valid, '--batch-size', '0'], '--batch-size'],
      ['--schema bad-name', ['diff', ...valid, '--schema', 'bad-name'], '--schema'],
      ['no database URL at all', ['diff', '--job-id', '5'], '--database-url'],
    ];

    it.each(cases)('%s: exit 2, one stderr line naming the flag, nothing on stdout', async (_name, argv, flag) => {
      expectUsageError(await run(argv), flag);
    });
  });

  it('--help describes every flag, the columns, the summary and examples', async () => {
    const result = await run(['diff', '--help']);

    expect(result.code).toBe(0);
    const text = result.stdout().replace(/\s+/g, ' ');
    for (const flag of ['--database-url', '--job-id', '--since', '--kind', '--change', '--summary', '--format', '--out', '--schema', '--batch-size']) {
      expect(text).toContain(flag);
    }
    expect(text).toContain('current_');
    expect(text).toContain('previousJobId');
    expect(text).toContain('Examples:');
  });
});
