import { readFile, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { printable } from '../../src/cli/common.js';
import { runCli } from '../../src/cli/main.js';
import { REPORT_KINDS, reportColumns } from '../../src/read-report.js';
import { type ReportKind, type ReportRows, readReport } from '../../src/index.js';
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
import { closedLoopbackPort } from '../helpers/faults.js';
import { camel, insertJob, insertReportRows, reportRow } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
/** Flag checks fail before any connection, so these tests need no server. */
const UNUSED_URL = 'postgres://orca@127.0.0.1:1/orca';

/** Text that CSV writers get wrong: delimiters, quotes, every line break, unicode, control characters. */
const TRICKY = [
  'plain/key.h5',
  'comma,in/key.h5',
  'quote"inside.h5',
  '"leading-quote.h5',
  'trailing-quote.h5"',
  '""',
  'line\nfeed.h5',
  'carriage\rreturn.h5',
  'crlf\r\nkey.h5',
  'trailing-cr.h5\r',
  'tab\there.h5',
  ' spaces around ',
  'ünïcødé/数据/😀.h5',
  'combining/e\u0301.h5',
  'rtl/שלום.h5',
  'escape/\u001b[31mred.h5',
  'bidi/\u202egnp.exe',
  '=SUM(A1)',
];

/** A value as the csv and table formats print it. */
const cellText = (value: unknown): string => (value instanceof Date ? value.toISOString() : String(value));

describe('orca-reconcile report', () => {
  // The CLI takes a URL, so only the real server can answer it.
  const { database: t, schema } = useOrcaSchema({
    prefix: 'orca_cli_report',
    buckets: [BUCKET],
    serverOnly: true,
    emptyTablesBeforeEach: true,
  });
  const directory = useTempDirectory('orca-cli-report-');
  const databaseUrl = process.env.DATABASE_URL ?? UNUSED_URL;

  const report = (jobId: number | string, kind: string, ...extra: string[]) => [
    'report',
    '--database-url',
    databaseUrl,
    '--schema',
    schema,
    '--job-id',
    String(jobId),
    '--kind',
    kind,
    ...extra,
  ];

  /** A job whose `kind` report holds one row per tricky key, tricky text in its other text columns too. */
  async function seedTricky<K extends ReportKind>(kind: K, keys: readonly string[] = TRICKY) {
    const jobId = await insertJob(t, schema, BUCKET);
    const rows = keys.map((keyPath, index) => {
      const row = { ...reportRow(kind, jobId, index), keyPath } as unknown as Record<string, unknown>;
      if ('filename' in row) row['filename'] = keys[(index + 1) % keys.length];
      if ('cumulusArchiveLocation' in row) row['cumulusArchiveLocation'] = 'cumulus,"bucket"\r\n';
      if ('storageClass' in row) row['storageClass'] = keys[(index + 2) % keys.length];
      return row as unknown as ReportRows[K];
    });
    await insertReportRows(t, schema, kind, rows);
    // The order the library reads them in; the keys themselves are checked against the seeds.
    const expected: ReportRows[K][] = [];
    for await (const row of readReport(t.db, { jobId, kind }, { schema })) expected.push(row);
    expect(expected.map((row) => row.keyPath).sort()).toEqual([...keys].sort());
    return { jobId, expected };
  }

  describe.each(REPORT_KINDS)('%s report', (kind) => {
    it.runIf(usingPostgres)('writes csv that a strict RFC 4180 reader reads back to the same values', async () => {
      // Prepare
      const { jobId, expected } = await seedTricky(kind);

      // Act
      const result = await run(report(jobId, kind, '--format', 'csv', '--batch-size', '4'));

      // Assess
      expect({ code: result.code, stderr: result.stderr() }).toEqual({ code: 0, stderr: '' });
      const [header, ...records] = parseCsvStrict(result.stdout());
      expect(header).toEqual(reportColumns(kind));
      expect(records).toEqual(
        expected.map((row) => reportColumns(kind).map((column) => cellText((row as unknown as Record<string, unknown>)[camel(column)]))),
      );
      expect(result.stdout()).toContain('"quote""inside.h5"');
    });

    it.runIf(usingPostgres)('writes ndjson and json that parse back to the library rows', async () => {
      const { jobId, expected } = await seedTricky(kind);

      const ndjson = await run(report(jobId, kind, '--format', 'ndjson', '--batch-size', '3'));
      const json = await run(report(jobId, kind, '--format', 'json', '--batch-size', '3'));

      expect([ndjson.code, json.code]).toEqual([0, 0]);
      const lines = ndjson.stdout().split('\n');
      expect(lines.pop()).toBe('');
      expect(lines.map(parseExact)).toEqual(asJson(expected));
      expect(parseExact(json.stdout())).toEqual(asJson(expected));
      // The seeds hold int8 values that no JavaScript number can hold: they are written exactly.
      expect(ndjson.stdout()).toMatch(/:(?:9007199254740\d{3}|4611686018427387\d{3})[,}]/);
      expect(Object.keys(JSON.parse(lines[0]!) as object)).toEqual(reportColumns(kind).map(camel));
    });
  });

  it.runIf(usingPostgres)('prints a table with a header per block, keys shown with control characters escaped', async () => {
    const { jobId, expected } = await seedTricky('orphan');

    const result = await run(report(jobId, 'orphan', '--format', 'table', '--batch-size', '5'));

    expect(result.code).toBe(0);
    const text = result.stdout();
    // eslint-disable-next-line no-control-regex -- no raw control character may reach the terminal
    expect(text.replace(/\n/g, '')).not.toMatch(/[\u0000-\u001f\u007f]/);
    const rows = tableRows(text);
    const headers = rows.filter((cells) => cells[0] === 'job_id');
    expect(headers).toHaveLength(Math.ceil(expected.length / 5));
    expect(headers[0]).toEqual(reportColumns('orphan'));
    const keys = rows.filter((cells) => cells[0] !== 'job_id').map((cells) => cells[1]);
    expect(keys).toEqual(expected.map((row) => printable(row.keyPath).trim()));
    expect(text).toContain('escape/\\u001b[31mred.h5');
    expect(text).toContain('line\\nfeed.h5');
    expect(text).toContain('bidi/\\u202egnp.exe');
    expect(text).not.toContain('\u202e');
  });

  it.runIf(usingPostgres)('writes an empty report as a header, an empty array, nothing, and a header-only table', async () => {
    const jobId = await insertJob(t, schema, BUCKET);

    const csv = await run(report(jobId, 'mismatch', '--format', 'csv'));
    const json = await run(report(jobId, 'mismatch', '--format', 'json'));
    const ndjson = await run(report(jobId, 'mismatch', '--format', 'ndjson'));
    const table = await run(report(jobId, 'mismatch', '--format', 'table'));

    expect([csv.code, json.code, ndjson.code, table.code]).toEqual([0, 0, 0, 0]);
    expect(parseCsvStrict(csv.stdout())).toEqual([[...reportColumns('mismatch')]]);
    expect(JSON.parse(json.stdout())).toEqual([]);
    expect(ndjson.stdout()).toBe('');
    expect(tableRows(table.stdout())).toEqual([[...reportColumns('mismatch')]]);
  });

  it.runIf(usingPostgres)('waits for a slow stdout to drain instead of buffering the report', async () => {
    // Prepare: enough rows that the whole csv is many blocks of --batch-size rows.
    const jobId = await insertJob(t, schema, BUCKET);
    const rows = Array.from({ length: 200 }, (_v, index) => reportRow('orphan', jobId, index));
    await insertReportRows(t, schema, 'orphan', rows);

    // Act
    const result = await run(report(jobId, 'orphan', '--format', 'csv', '--batch-size', '5'), { slow: true });

    // Assess
    expect(result.code).toBe(0);
    const records = parseCsvStrict(result.stdout());
    expect(records).toHaveLength(201);
    // One block (5 rows, about 350 bytes) at most waits in the stream, never the whole report.
    expect(result.stdout().length).toBeGreaterThan(10_000);
    expect(result.maxBufferedStdout()).toBeLessThan(1_000);
  });

  describe('when stdout breaks', () => {
    /** A stdout that takes `accept` chunks, then fails the next write with `code`. */
    function breakingStdout(code: string, accept: number) {
      let chunks = 0;
      const stdout = new Writable({
        write(_chunk, _encoding, callback) {
          chunks += 1;
          if (chunks > accept) callback(Object.assign(new Error(`write ${code}`), { code }));
          else callback();
        },
      });
      return { stdout, chunks: () => chunks };
    }

    it.runIf(usingPostgres)('stops quietly with exit 0 when the reader closed the pipe (EPIPE), reading no further', async () => {
      const jobId = await insertJob(t, schema, BUCKET);
      await insertReportRows(t, schema, 'orphan', Array.from({ length: 50 }, (_v, index) => reportRow('orphan', jobId, index)));
      const { stdout, chunks } = breakingStdout('EPIPE', 2);
      const stderr = memoryIO();

      const code = await runCli(report(jobId, 'orphan', '--format', 'ndjson', '--batch-size', '1'), { ...stderr.io, stdout });

      expect(code).toBe(0);
      expect(stderr.stderr()).toBe('');
      // The third block failed; nothing was written after it.
      expect(chunks()).toBe(3);
    });

    it.runIf(usingPostgres)('fails with exit 1 and one line on any other write error', async () => {
      const jobId = await insertJob(t, schema, BUCKET);
      await insertReportRows(t, schema, 'orphan', Array.from({ length: 20 }, (_v, index) => reportRow('orphan', jobId, index)));
      const { stdout } = breakingStdout('EIO', 1);
      const stderr = memoryIO();

      const code = await runCli(report(jobId, 'orphan', '--format', 'csv', '--batch-size', '2'), { ...stderr.io, stdout });

      expect(code).toBe(1);
      expect(stderr.stderrLines()).toEqual(['orca-reconcile: writing the report failed: write EIO']);
    });
  });

  it.runIf(usingPostgres)('defaults to csv when stdout is not a terminal and to a table when it is', async () => {
    const { jobId } = await seedTricky('orphan', ['a.h5', 'b.h5']);

    const piped = await run(report(jobId, 'orphan'));
    const terminal = await run(report(jobId, 'orphan'), { tty: true });

    expect(parseCsvStrict(piped.stdout())[0]).toEqual(reportColumns('orphan'));
    expect(tableRows(terminal.stdout())[0]).toEqual(reportColumns('orphan'));
  });

  it.runIf(usingPostgres)('with --out writes the file, replacing what was there, and reports on stderr only', async () => {
    // Prepare: a longer file at the path, so truncation shows.
    const { jobId, expected } = await seedTricky('phantom');
    const file = join(directory(), 'phantoms.csv');
    await writeFile(file, 'x'.repeat(100_000));

    // Act
    const result = await run(report(jobId, 'phantom', '--out', file, '--batch-size', '2'));

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout()).toBe('');
    const records = parseCsvStrict(await readFile(file, 'utf8'));
    expect(records).toHaveLength(expected.length + 1);
    const lines = result.stderrLines();
    expect(lines.at(-1)).toBe(`wrote ${expected.length} rows to ${file}`);
    for (const line of lines.slice(0, -1)) expect(line).toMatch(/^\d+ rows written so far$/);
  });

  it.runIf(usingPostgres)('fails with one line naming --out when the file cannot be created', async () => {
    const jobId = await insertJob(t, schema, BUCKET);
    const file = join(directory(), 'missing-directory', 'out.csv');

    const result = await run(report(jobId, 'orphan', '--out', file));

    expect(result.code).toBe(1);
    expect(result.stderrLines()).toHaveLength(1);
    expect(result.stderrLines()[0]).toMatch(/^orca-reconcile: --out: cannot write .*out\.csv: ENOENT/);
  });

  it.runIf(usingPostgres)('fails on an unknown job with exit 1 and leaves an existing --out file untouched', async () => {
    const file = join(directory(), 'keep.csv');
    await writeFile(file, 'keep me');

    const result = await run(report(987_654_321, 'orphan', '--out', file));

    expect(result.code).toBe(1);
    expect(result.stderrLines()).toEqual(['orca-reconcile: reconcile_job 987654321 does not exist']);
    expect(await readFile(file, 'utf8')).toBe('keep me');
  });

  it.runIf(usingPostgres)('fails with exit 1 on a schema that does not exist, in one line', async () => {
    const result = await run(['report', '--database-url', databaseUrl, '--schema', `${schema}_nope`, '--job-id', '1', '--kind', 'orphan']);

    expect(result.code).toBe(1);
    expect(result.stderrLines()).toHaveLength(1);
    expect(result.stderrLines()[0]).toMatch(/^orca-reconcile: read job failed: .*does not exist/);
  });

  describe('bad command lines', () => {
    const valid = ['--database-url', UNUSED_URL, '--job-id', '1', '--kind', 'orphan'];
    const replace = (flag: string, value: string) => {
      const argv = [...valid];
      argv[argv.indexOf(flag) + 1] = value;
      return ['report', ...argv];
    };
    const without = (flag: string) => {
      const argv = [...valid];
      argv.splice(argv.indexOf(flag), 2);
      return ['report', ...argv];
    };
    const cases: [string, string[], string][] = [
      ['missing --job-id', without('--job-id'), '--job-id'],
      ['--job-id abc', replace('--job-id', 'abc'), '--job-id'],
      ['--job-id 0', replace('--job-id', '0'), '--job-id'],
      ['missing --kind', without('--kind'), '--kind'],
      ['--kind nonsense', replace('--kind', 'nonsense'), '--kind'],
      ['--format nonsense', ['report', ...valid, '--format', 'nonsense'], '--format'],
      ['--batch-size 0', ['report', ...valid, '--batch-size', '0'], '--batch-size'],
      ['--batch-size 100001', ['report', ...valid, '--batch-size', '100001'], '--batch-size'],
      ['--batch-size 1e3', ['report', ...valid, '--batch-size', '1e3'], '--batch-size'],
      ['--schema bad-name', ['report', ...valid, '--schema', 'bad-name'], '--schema'],
      ['no database URL at all', without('--database-url'), '--database-url'],
      ['a mysql URL', replace('--database-url', 'mysql://orca@db/orca'), '--database-url'],
      ['a URL that is not one', replace('--database-url', 'not a url'), '--database-url'],
      ['an unknown option', ['report', ...valid, '--frobnicate'], '--frobnicate'],
    ];

    it.each(cases)('%s: exit 2, one stderr line naming the flag, nothing on stdout', async (_name, argv, flag) => {
      expectUsageError(await run(argv), flag);
    });
  });

  describe('a database URL with a password that cannot connect', () => {
    const password = 'Sup3r-s3cret-pa55word';

    it.each(['--database-url URL', '--database-url=URL', 'DATABASE_URL'])(
      'given as %s: exit 1, one line naming where the URL came from, the password nowhere',
      async (form) => {
        const url = `postgres://orca:${password}@127.0.0.1:${await closedLoopbackPort()}/orca`;
        const rest = ['--job-id', '1', '--kind', 'orphan'];
        const argv =
          form === 'DATABASE_URL'
            ? ['report', ...rest]
            : form === '--database-url=URL'
              ? ['report', `--database-url=${url}`, ...rest]
              : ['report', '--database-url', url, ...rest];

        const result = await run(argv, {}, form === 'DATABASE_URL' ? { DATABASE_URL: url } : {});

        expect(result.code).toBe(1);
        expect(result.stdout()).toBe('');
        expect(result.stderrLines()).toHaveLength(1);
        expect(result.stderrLines()[0]).toContain(form === 'DATABASE_URL' ? 'of DATABASE_URL' : 'of --database-url');
        expect(result.stderrLines()[0]).toContain('ECONNREFUSED');
        expect(result.stderr() + result.stdout()).not.toContain(password);
      },
    );
  });

  it('--help describes every flag, the formats and examples, without showing DATABASE_URL', async () => {
    const env = { DATABASE_URL: 'postgres://orca:help-secret@db:5432/orca' };

    const result = await run(['report', '--help'], {}, env);

    expect(result.code).toBe(0);
    // Commander wraps option descriptions to the width of the terminal.
    const text = result.stdout().replace(/\s+/g, ' ');
    for (const flag of ['--database-url', '--job-id', '--kind', '--format', '--out', '--schema', '--batch-size']) {
      expect(text).toContain(flag);
    }
    expect(text).toContain('table on a terminal, csv when piped or with --out');
    expect(text).toContain('Examples:');
    expect(text).toContain('wrote N rows to FILE');
    expect(text + result.stderr()).not.toContain('help-secret');
  });
});
