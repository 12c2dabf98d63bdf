import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { OrcaStatus } from '../../src/index.js';
import { memoryIO, parseCsvStrict, tableRows, useTempDirectory } from '../helpers/cli-io.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { HISTORY_BUCKET, type LoadedJob, loadJobs } from '../helpers/job-changes.js';
import { insertJob, insertReportRows, reportRow } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const UNUSED_URL = 'postgres://orca@127.0.0.1:1/orca';
/** An error message with a line break, a quote and a comma: csv must quote it, whole. */
const ERROR_MESSAGE = 'listing replaced by job 9,\nso "this" run stopped';
const CSV_HEADER = [
  'id',
  'orca_archive_location',
  'status_id',
  'status',
  'start_time',
  'last_update',
  'end_time',
  'error_message',
  'phantoms',
  'orphans',
  'mismatches',
  'pieces',
];

/** The command line in a process of its own, as a user runs it: `node --import tsx src/cli/bin.ts`. */
const BIN = [process.execPath, '--import', 'tsx', 'src/cli/bin.ts'] as const;

/** Runs the command line with its stdout a pipe to this process. */
function piped(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN[0], [...BIN.slice(1), ...argv], { cwd: ROOT, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** Runs the command line with its stdout redirected to `file`, as `> file` does. */
async function redirected(argv: string[], file: string): Promise<{ code: number | null; stderr: string }> {
  const handle = await open(file, 'w');
  try {
    const child = spawn(BIN[0], [...BIN.slice(1), ...argv], { cwd: ROOT, stdio: ['ignore', handle.fd, 'pipe'], timeout: 30_000 });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stderr };
  } finally {
    await handle.close();
  }
}

/** A terminal `columns` wide: in-memory streams that say they are a TTY of that width. */
function terminal(columns: number) {
  const output = memoryIO({}, { tty: true });
  Object.assign(output.io.stdout, { columns });
  return output;
}

describe('orca-reconcile jobs --format (no server needed)', () => {
  it('--json with another --format is exit 2 naming both flags, before any connection', async () => {
    const output = memoryIO({});

    const code = await runCli(['jobs', '--database-url', UNUSED_URL, '--json', '--format', 'csv'], output.io);

    expect(code).toBe(2);
    expect(output.stderrLines()).toEqual(['orca-reconcile: --json is --format json: it cannot go with --format csv']);
  });

  it.each([
    ['jobs', ['jobs', '--expanded', '--format', 'json'], '--format json'],
    ['jobs --json', ['jobs', '--json', '--expanded'], '--json'],
    ['report', ['report', '--job-id', '1', '--kind', 'orphan', '--format', 'ndjson', '--expanded'], '--format ndjson'],
  ])('%s: --expanded with a format other than table is exit 2 naming both, before any connection', async (_name, argv, other) => {
    const output = memoryIO({});

    const code = await runCli([...argv, '--database-url', UNUSED_URL], output.io);

    expect(code).toBe(2);
    expect(output.stderrLines()).toEqual([`orca-reconcile: --expanded prints a table: it cannot go with ${other}`]);
  });

  it('an unknown --format is exit 2 naming the flag and its choices', async () => {
    const output = memoryIO({});

    const code = await runCli(['jobs', '--database-url', UNUSED_URL, '--format', 'xml'], output.io);

    expect(code).toBe(2);
    expect(output.stderrLines()).toEqual([
      "orca-reconcile: option '--format <format>' argument 'xml' is invalid. Allowed choices are table, csv, json.",
    ]);
  });
});

describe('orca-reconcile jobs output formats', () => {
  // The CLI connects by itself, so only the real server can answer it.
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_cli_output', buckets: [BUCKET], serverOnly: true });
  const url = process.env.DATABASE_URL ?? UNUSED_URL;
  const jobs = (...args: string[]) => ['jobs', '--database-url', url, '--schema', schema, ...args];
  /** Newest first, as `jobs` lists them. */
  let ids: number[] = [];
  const directory = useTempDirectory('orca-cli-output-');

  beforeAll(async () => {
    if (!usingPostgres) return;
    const done = await insertJob(t, schema, BUCKET, OrcaStatus.Success);
    const failed = await insertJob(t, schema, BUCKET, OrcaStatus.Error);
    await t.query(`UPDATE "${schema}".reconcile_job SET error_message = $2, end_time = last_update WHERE id = $1`, [failed, ERROR_MESSAGE]);
    ids = [failed, done];
  });

  const expectedCsv = () => [
    CSV_HEADER,
    [String(ids[0]), BUCKET, '4', 'error', '2026-01-01T01:00:00.000Z', '2026-01-01T01:00:00.000Z', '2026-01-01T01:00:00.000Z', ERROR_MESSAGE, '0', '0', '0', ''],
    [String(ids[1]), BUCKET, '5', 'success', '2026-01-01T01:00:00.000Z', '2026-01-01T01:00:00.000Z', '', '', '0', '0', '0', ''],
  ];

  it.runIf(usingPostgres)('writes csv when stdout is a pipe: RFC 4180, every field of the json, error messages whole', async () => {
    const result = await piped(jobs());

    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(parseCsvStrict(result.stdout)).toEqual(expectedCsv());
  });

  it.runIf(usingPostgres)('writes csv when stdout is a file, and a table there with --format table', async () => {
    const csvFile = join(directory(), 'jobs.csv');
    const tableFile = join(directory(), 'jobs.txt');

    const csv = await redirected(jobs(), csvFile);
    const table = await redirected(jobs('--format', 'table'), tableFile);

    expect([csv, table]).toEqual([
      { code: 0, stderr: '' },
      { code: 0, stderr: '' },
    ]);
    expect(parseCsvStrict(await readFile(csvFile, 'utf8'))).toEqual(expectedCsv());
    expect(tableRows(await readFile(tableFile, 'utf8')).map((cells) => cells[0])).toEqual(['id', ...ids.map(String)]);
  });

  it.runIf(usingPostgres)('prints a table on a terminal, and csv or json when asked; --json is --format json', async () => {
    const terminal = memoryIO({}, { tty: true });
    const csv = memoryIO({}, { tty: true });
    const json = memoryIO({});
    const alias = memoryIO({});

    const codes = [
      await runCli(jobs(), terminal.io),
      await runCli(jobs('--format', 'csv'), csv.io),
      await runCli(jobs('--format', 'json'), json.io),
      await runCli(jobs('--json'), alias.io),
    ];

    expect(codes).toEqual([0, 0, 0, 0]);
    expect(tableRows(terminal.stdout()).map((cells) => cells[0])).toEqual(['id', ...ids.map(String)]);
    expect(parseCsvStrict(csv.stdout())).toEqual(expectedCsv());
    expect((JSON.parse(json.stdout()) as { id: number }[]).map((job) => job.id)).toEqual(ids);
    expect(alias.stdout()).toBe(json.stdout());
  });
});

describe('orca-reconcile tables that fit the terminal', () => {
  // The CLI connects by itself, so only the real server can answer it.
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_cli_expanded', buckets: [BUCKET], serverOnly: true });
  const url = process.env.DATABASE_URL ?? UNUSED_URL;
  const jobs = (...args: string[]) => ['jobs', '--database-url', url, '--schema', schema, ...args];
  const directory = useTempDirectory('orca-cli-expanded-');
  const report = (jobId: number, ...args: string[]) => ['report', '--database-url', url, '--schema', schema, '--job-id', String(jobId), '--kind', 'orphan', ...args];
  let failed: number;
  let done: number;

  beforeAll(async () => {
    if (!usingPostgres) return;
    done = await insertJob(t, schema, BUCKET, OrcaStatus.Success);
    failed = await insertJob(t, schema, BUCKET, OrcaStatus.Error);
    await t.query(`UPDATE "${schema}".reconcile_job SET error_message = $2, end_time = last_update WHERE id = $1`, [failed, ERROR_MESSAGE]);
    await insertReportRows(t, schema, 'orphan', [0, 1].map((index) => reportRow('orphan', done, index)));
  });

  /** One expanded record: its rule, then a `name | value` line per field, names padded to the longest (13). */
  const record = (n: number, rule: string, fields: [string, string | number][]) => [
    `-[ RECORD ${n} ]${rule}`,
    ...fields.map(([name, value]) => `${name.padEnd(13)} | ${value}`),
  ];
  const TIME = '2026-01-01T01:00:00.000Z';
  const jobFields = (id: number, status: string, endTime: string, errorMessage: string, orphans: number): [string, string | number][] => [
    ['id', id],
    ['bucket', BUCKET],
    ['status', status],
    ['start_time', TIME],
    ['last_update', TIME],
    ['end_time', endTime],
    ['error_message', errorMessage],
    ['phantoms', 0],
    ['orphans', orphans],
    ['mismatches', 0],
    ['pieces', ''],
  ];

  /** The two jobs as expanded records; the widest value is the error message, 49 characters once its line break is escaped. */
  const expandedJobs = (rule = `-+-${'-'.repeat(49)}`) =>
    [
      ...record(1, rule, jobFields(failed, 'error', TIME, 'listing replaced by job 9,\\nso "this" run stopped', 0)),
      ...record(2, rule, jobFields(done, 'success', '', '', 2)),
      '(2 rows)',
      '',
    ].join('\n');

  it.runIf(usingPostgres)('jobs: a table wider than the terminal is printed expanded, as psql \\x auto does, with the row count', async () => {
    const narrow = terminal(80);

    const code = await runCli(jobs(), narrow.io);

    expect({ code, stderr: narrow.stderr() }).toEqual({ code: 0, stderr: '' });
    expect(narrow.stdout()).toBe(expandedJobs());
  });

  it.runIf(usingPostgres)('jobs: a table that fits stays a table, followed by "(N rows)", "(1 row)" for one', async () => {
    const wide = terminal(400);
    const one = terminal(400);

    await runCli(jobs(), wide.io);
    await runCli(jobs('--limit', '1'), one.io);

    const lines = wide.stdout().split('\n');
    expect(tableRows(wide.stdout()).map((cells) => cells[0])).toEqual(['id', String(failed), String(done)]);
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThanOrEqual(400);
    expect(lines.slice(-2)).toEqual(['(2 rows)', '']);
    expect(one.stdout().endsWith('┘\n(1 row)\n')).toBe(true);
  });

  it.runIf(usingPostgres)('jobs --expanded: expanded even where nothing measures the width; no rule longer than a narrow terminal', async () => {
    const anywhere = memoryIO({});
    const tiny = terminal(30);

    await runCli(jobs('--expanded'), anywhere.io);
    await runCli(jobs('--expanded'), tiny.io);

    expect(anywhere.stdout()).toBe(expandedJobs());
    expect(tiny.stdout()).toBe(expandedJobs(`-+-${'-'.repeat(14)}`));
  });

  it.runIf(usingPostgres)('jobs: no job is the header table and "(0 rows)", or "(0 rows)" alone expanded', async () => {
    const table = terminal(400);
    const expanded = terminal(400);

    await runCli(jobs('--location', 'prefix-orca-unknown'), table.io);
    await runCli(jobs('--location', 'prefix-orca-unknown', '--expanded'), expanded.io);

    expect(tableRows(table.stdout())).toHaveLength(1);
    expect(table.stdout().endsWith('┘\n(0 rows)\n')).toBe(true);
    expect(expanded.stdout()).toBe('(0 rows)\n');
  });

  /** The two orphan rows of job `done` as expanded records, under a rule as wide as the timestamps. */
  const expandedOrphans = () => {
    const orphan = (n: number, keyPath: string, etag: string, lastUpdate: string, size: string, storageClass: string) =>
      record(n, `-+-${'-'.repeat(24)}`, [
        ['job_id', done],
        ['key_path', keyPath],
        ['etag', etag],
        ['last_update', lastUpdate],
        ['size_in_bytes', size],
        ['storage_class', storageClass],
      ]);
    return [
      ...orphan(1, 'dir/000.h5', '"o000"', '2025-01-01T05:06:07.000Z', '9007199254740993', 'GLACIER'),
      ...orphan(2, 'dir/001.h5', '"o001"', '2025-01-02T05:06:07.001Z', '9007199254740995', 'STANDARD'),
      '(2 rows)',
      '',
    ].join('\n');
  };

  it.runIf(usingPostgres)('report: blocks wider than the terminal are expanded, records numbered across blocks, one row count at the end', async () => {
    const narrow = terminal(80);
    const wide = terminal(200);

    const codes = [await runCli(report(done, '--batch-size', '1'), narrow.io), await runCli(report(done, '--batch-size', '1'), wide.io)];

    expect(codes).toEqual([0, 0]);
    expect(narrow.stdout()).toBe(expandedOrphans());
    const table = wide.stdout();
    expect(tableRows(table).filter((cells) => cells[0] === 'job_id')).toHaveLength(2);
    expect(table.endsWith('┘\n(2 rows)\n')).toBe(true);
    expect(table.match(/\(\d+ rows?\)/g)).toEqual(['(2 rows)']);
  });

  it.runIf(usingPostgres)('report --expanded: a table even when piped, and in the file of --out', async () => {
    const piped = memoryIO({});
    const file = join(directory(), 'orphans.txt');

    const codes = [await runCli(report(done, '--expanded'), piped.io), await runCli(report(done, '--expanded', '--out', file), memoryIO({}).io)];

    expect(codes).toEqual([0, 0]);
    expect(piped.stdout()).toBe(expandedOrphans());
    expect(await readFile(file, 'utf8')).toBe(expandedOrphans());
  });
});

describe('orca-reconcile diff tables that fit the terminal', () => {
  // The CLI connects by itself, so only the real server can answer it.
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_cli_diff_expanded', buckets: [HISTORY_BUCKET], serverOnly: true });
  const url = process.env.DATABASE_URL ?? UNUSED_URL;
  let job: LoadedJob;
  let previous: LoadedJob;

  beforeAll(async () => {
    if (!usingPostgres) return;
    const orphans = [0, 1].map((index) => reportRow('orphan', 0, index));
    const loaded = await loadJobs(
      t,
      schema,
      { reports: { orphan: orphans.slice(0, 1) } },
      { reports: { orphan: orphans, phantom: [reportRow('phantom', 0, 0)] } },
    );
    [previous, job] = [loaded[0]!, loaded[1]!];
  });

  const diff = (...args: string[]) => ['diff', '--database-url', url, '--schema', schema, '--job-id', String(job.id), ...args];
  const records = (text: string) => text.match(/^-\[ RECORD \d+ \][-+]*$/gm)?.map((line) => line.slice(0, 13));
  const field = (text: string, name: string) => [...text.matchAll(new RegExp(`^${name} +\\| (.*)$`, 'gm'))].map((match) => match[1]);

  it.runIf(usingPostgres)('expands a block per kind wider than the terminal, the records numbered across the kinds, every line within the width', async () => {
    const narrow = terminal(80);

    const code = await runCli(diff(), narrow.io);

    expect(code).toBe(0);
    const text = narrow.stdout();
    expect(records(text)).toEqual(['-[ RECORD 1 ]', '-[ RECORD 2 ]']);
    expect(field(text, 'kind')).toEqual(['phantom', 'orphan']);
    expect(field(text, 'change')).toEqual(['new', 'new']);
    expect(field(text, 'key_path')).toEqual(['dir/000.h5', 'dir/001.h5']);
    expect(text.endsWith('\n(2 rows)\n')).toBe(true);
    expect(Math.max(...text.split('\n').map((line) => [...line].length))).toBeLessThanOrEqual(80);
  });

  it.runIf(usingPostgres)('--summary --expanded: the counts as one record per report under the line naming the jobs', async () => {
    const output = memoryIO({});

    const code = await runCli(diff('--summary', '--expanded'), output.io);

    expect(code).toBe(0);
    const text = output.stdout();
    expect(text.startsWith(`job ${job.id} compared with job ${previous.id}\n-[ RECORD 1 ]`)).toBe(true);
    expect(field(text, 'report')).toEqual(['phantom', 'orphan', 'mismatch']);
    expect(field(text, 'new')).toEqual(['1', '1', '0']);
    expect(field(text, 'unchanged')).toEqual(['0', '1', '0']);
    expect(text.endsWith('\n(3 rows)\n')).toBe(true);
  });
});
