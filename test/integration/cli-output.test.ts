import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { OrcaStatus } from '../../src/index.js';
import { memoryIO, parseCsvStrict, tableRows } from '../helpers/cli-io.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { insertJob } from '../helpers/rows.js';

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

describe('orca-reconcile jobs --format (no server needed)', () => {
  it('--json with another --format is exit 2 naming both flags, before any connection', async () => {
    const output = memoryIO({});

    const code = await runCli(['jobs', '--database-url', UNUSED_URL, '--json', '--format', 'csv'], output.io);

    expect(code).toBe(2);
    expect(output.stderrLines()).toEqual(['orca-reconcile: --json is --format json: it cannot go with --format csv']);
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
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'orca-cli-output-'));
    if (!usingPostgres) return;
    const done = await insertJob(t, schema, BUCKET, OrcaStatus.Success);
    const failed = await insertJob(t, schema, BUCKET, OrcaStatus.Error);
    await t.query(`UPDATE "${schema}".reconcile_job SET error_message = $2, end_time = last_update WHERE id = $1`, [failed, ERROR_MESSAGE]);
    ids = [failed, done];
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  const expectedCsv = () => [
    CSV_HEADER,
    [String(ids[0]), BUCKET, '4', 'error', '2026-01-01T01:00:00.000Z', '2026-01-01T01:00:00.000Z', '2026-01-01T01:00:00.000Z', ERROR_MESSAGE, '0', '0', '0'],
    [String(ids[1]), BUCKET, '5', 'success', '2026-01-01T01:00:00.000Z', '2026-01-01T01:00:00.000Z', '', '', '0', '0', '0'],
  ];

  it.runIf(usingPostgres)('writes csv when stdout is a pipe: RFC 4180, every field of the json, error messages whole', async () => {
    const result = await piped(jobs());

    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(parseCsvStrict(result.stdout)).toEqual(expectedCsv());
  });

  it.runIf(usingPostgres)('writes csv when stdout is a file, and a table there with --format table', async () => {
    const csvFile = join(directory, 'jobs.csv');
    const tableFile = join(directory, 'jobs.txt');

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
