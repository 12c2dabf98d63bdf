import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { loadDemoModules } from '../../src/cli/demo.js';
import { ConfigurationError, OrcaStatus, progressTablesSql } from '../../src/index.js';
import { memoryIO, tableRows } from '../helpers/cli-io.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { closedLoopbackPort } from '../helpers/faults.js';
import { archiveCounts, seedArchive } from '../helpers/archive.js';
import { DISCREPANCY_TYPES, insertJob, readJob, readReports, seedOneOfEachReport, stageJob } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
const OTHER_BUCKET = 'prefix-orca-secondary';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface CliResult {
  /** Exit code; null for a child process that had to be killed. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with in-memory stdout and stderr, and only `env` as its environment. */
async function cli(argv: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const memory = memoryIO(env);
  const code = await runCli(argv, memory.io);
  return { code, stdout: memory.stdout(), stderr: memory.stderr() };
}

// The demo's sample archive, derived here on its own: file i is band (i - 1) % 6 + 1 of granule
// (i - 1) / 6 + 1, which is of MOD09GQ when odd and of MYD13A1 when even.
const md5 = (text: string): string => createHash('md5').update(text).digest('hex');
function demoKeyPath(i: number): string {
  const granule = Math.floor((i - 1) / 6) + 1;
  const short = granule % 2 === 1 ? 'MOD09GQ' : 'MYD13A1';
  return `${short}___061/${short}.A${String(granule).padStart(6, '0')}.B${String(((i - 1) % 6) + 1).padStart(2, '0')}.hdf`;
}
const demoPhantomRow = (i: number): string[] => [
  demoKeyPath(i),
  `"${md5(`demo-${i}`).slice(0, 8)}…`,
  String(1048576 + ((i * 7919) % 9000000)),
  i % 5 === 0 ? 'DEEP_ARCHIVE' : 'GLACIER',
];
const demoOrphanRow = (o: number): string[] => [
  `MOD09GQ___061/MOD09GQ.X${String(o).padStart(6, '0')}.B01.hdf`,
  `"${md5(`orphan-${o}`).slice(0, 8)}…`,
  String(2097152 + o),
  'GLACIER',
];
const section = (text: string, from: string, to: string): string => text.slice(text.indexOf(from), text.indexOf(to));

/** The CLI as a user runs it: a child process of its own; the exit code is null when it had to be killed. */
function run(argv: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...argv], { cwd: ROOT, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** One line on stderr, `orca-reconcile: …`, nothing on stdout. */
function expectOneLineError(result: CliResult, code: number, pattern: RegExp): void {
  expect(result).toMatchObject({ code, stdout: '' });
  expect(result.stderr).toMatch(/^orca-reconcile: [^\n]+\n$/);
  expect(result.stderr).toMatch(pattern);
}

describe('orca-reconcile demo (PGlite and fauxqs in process, no server)', () => {
  it('runs a whole reconciliation in under 20 s and prints the trail, the counts and the first report rows', async () => {
    // Act
    const started = performance.now();
    const result = await cli(['demo']);
    const elapsedMs = performance.now() - started;

    // Assess
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(elapsedMs).toBeLessThan(20_000);
    const { stdout } = result;
    // Trail: the loader's two statuses, then the task's two, in that order, each with its time.
    expect(stdout).toMatch(
      /Status trail of job 1 .*\n {2}\d\d:\d\d:\d\d\.\d{3}Z {2}\+0\.000 s {2}getting S3 list\n.* {2}staged\n.* {2}generating reports\n.* {2}success\n/,
    );
    // 3000 files: slots 7, 71, 143, ... of every 500 files, 6 each; one orphan per 250 files.
    expect(stdout).toMatch(/^ {2}phantoms +6 \/ 6$/m);
    expect(stdout).toMatch(/^ {2}orphans +12 \/ 12$/m);
    expect(stdout).toMatch(/^ {2}mismatches +42 \/ 42$/m);
    for (const type of DISCREPANCY_TYPES) {
      expect(stdout).toMatch(new RegExp(`^ {4}${type} +6 / 6$`, 'm'));
    }
    expect(stdout).toContain('SQS message deleted: yes (the queue holds 0 visible, 0 in flight, 0 delayed)');
    expect(stdout).toContain('demo-orca-secondary untouched: job 2 still staged, its 299 listing rows unchanged, 0 report rows');
    // Tables: the first 5 rows in primary-key order (collection, granule, key path). The phantoms
    // are files 7, 507, 1007, ...; 2507 (MYD13A1.A000418) sorts last and is not shown.
    expect(stdout).toContain('Phantom report, first 5 of 6 rows:');
    expect(tableRows(section(stdout, 'Phantom report', 'Orphan report'))).toEqual([
      ['key_path', 'orca_etag', 'orca_size', 'orca_storage_class'],
      ...[507, 2007, 7, 1007, 1507].map(demoPhantomRow),
    ]);
    expect(stdout).toContain('Orphan report, first 5 of 12 rows:');
    expect(tableRows(section(stdout, 'Orphan report', 'Mismatch report'))).toEqual([
      ['key_path', 'etag', 'size_in_bytes', 'storage_class'],
      ...[1, 2, 3, 4, 5].map(demoOrphanRow),
    ]);
    expect(stdout).toContain('Mismatch report, first 5 of 42 rows:');
    expect(stdout).toMatch(/│ discrepancy_type +│ etag +│ size_in_bytes +│ storage_class +│/);
    expect(stdout).toMatch(/^Done in \d+\.\d\d s\.$/m);
  }, 30_000);

  it('refuses fewer files than it needs for every kind of discrepancy: exit 2 naming --files', async () => {
    expectOneLineError(await cli(['demo', '--files', '499']), 2, /--files must be an integer between 500 and 1000000/);
  });

  it('says in one line how to install PGlite and fauxqs when one is missing', async () => {
    // Prepare
    const missing = Object.assign(new Error("Cannot find package 'fauxqs'"), { code: 'ERR_MODULE_NOT_FOUND' });
    const importers = {
      pglite: () => import('@electric-sql/pglite'),
      fauxqs: () => Promise.reject(missing),
    };

    // Act
    const error: unknown = await loadDemoModules(importers).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).variable).toBe('fauxqs');
    expect((error as Error).message).toBe(
      'fauxqs is not installed: install the optional peer dependencies @electric-sql/pglite and fauxqs with npm install --no-save @electric-sql/pglite fauxqs',
    );
  });

  it('passes on any other failure to load them as it is', async () => {
    const broken = new SyntaxError('Unexpected token');
    const error = await loadDemoModules({
      pglite: () => Promise.reject(broken),
      fauxqs: () => import('fauxqs'),
    }).catch((caught: unknown) => caught);
    expect(error).toBe(broken);
  });
});

describe('orca-reconcile usage errors, help and the binary (no server needed)', () => {
  const PASSWORD = 'cli-Passw0rd-never-printed-4711';
  let closedUrl: string;

  beforeAll(async () => {
    closedUrl = `postgres://orca_user:${PASSWORD}@127.0.0.1:${await closedLoopbackPort()}/orca`;
  });

  it('run: a bad --job-id is exit 2 naming --job-id, before any connection', async () => {
    for (const jobId of ['abc', '0', '-3', '1.5']) {
      const result = await cli(['run', '--database-url', closedUrl, '--job-id', jobId, '--location', BUCKET]);
      expectOneLineError(result, 2, /--job-id must be a positive integer/);
    }
  });

  it('run: --queue-url without --receipt-handle, or the reverse, is exit 2 naming the missing flag', async () => {
    const base = ['run', '--database-url', closedUrl, '--job-id', '7', '--location', BUCKET];
    expectOneLineError(await cli([...base, '--queue-url', 'http://127.0.0.1:1/q']), 2, /--receipt-handle is required/);
    expectOneLineError(await cli([...base, '--receipt-handle', 'AQEB']), 2, /--queue-url is required/);
  });

  it('run: a queue without --region or AWS_REGION is exit 2 naming --region', async () => {
    const argv = ['run', '--database-url', closedUrl, '--job-id', '7', '--location', BUCKET, '--queue-url', 'http://127.0.0.1:1/q', '--receipt-handle', 'AQEB'];
    expectOneLineError(await cli(argv), 2, /--region is required/);
  });

  it('run and schema: no --database-url and no DATABASE_URL is exit 2 naming --database-url', async () => {
    expectOneLineError(await cli(['run', '--job-id', '7', '--location', BUCKET]), 2, /--database-url is required/);
    expectOneLineError(await cli(['schema', '--bucket', BUCKET]), 2, /--database-url is required/);
  });

  it('run: an unreachable database is exit 1 with one line that does not hold the password', async () => {
    const result = await cli(['run', '--database-url', closedUrl, '--job-id', '7', '--location', BUCKET]);
    expectOneLineError(result, 1, /connect to the database failed: .*ECONNREFUSED/);
    expect(result.stderr).not.toContain(PASSWORD);
  });

  it('schema: an unreachable database is exit 1 with one line that does not hold the password', async () => {
    const result = await cli(['schema', '--database-url', closedUrl, '--bucket', BUCKET]);
    expectOneLineError(result, 1, /create the ORCA tables failed: .*ECONNREFUSED/);
    expect(result.stderr).not.toContain(PASSWORD);
  });

  it('--help of the program and of every command exits 0 and prints its usage', async () => {
    const top = await cli(['--help']);
    expect(top).toMatchObject({ code: 0, stderr: '' });
    expect(top.stdout).toMatch(/^Usage: orca-reconcile /);
    for (const command of ['demo', 'run', 'report', 'jobs', 'schema']) {
      expect(top.stdout).toContain(`  ${command}`);
      const help = await cli([command, '--help']);
      expect(help, command).toMatchObject({ code: 0, stderr: '' });
      expect(help.stdout, command).toMatch(new RegExp(`^Usage: orca-reconcile ${command} `));
    }
    for (const command of ['demo', 'run', 'schema']) {
      const { stdout } = await cli([command, '--help']);
      expect(stdout, command).toMatch(/\nExamples?:\n {2}\$ (npx )?orca-reconcile /);
    }
  });

  it('runs as a child process: --help exits 0, a usage error exits 2 with one line', async () => {
    const help = await run(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: orca-reconcile /);
    const usage = await run(['run', '--job-id', 'abc', '--location', BUCKET]);
    expectOneLineError(usage, 2, /--job-id must be a positive integer/);
  }, 60_000);

  it('demo as a child process exits 0 by itself: PGlite, the emulator and the SQS client are all closed', async () => {
    const started = performance.now();
    const demo = await run(['demo', '--files', '500']);
    expect(demo).toMatchObject({ code: 0, stderr: '' });
    expect(demo.stdout).toMatch(/^ {2}mismatches +7 \/ 7$/m);
    expect(performance.now() - started).toBeLessThan(20_000);
  }, 60_000);
});

describe.runIf(usingPostgres)('orca-reconcile schema and run on the real server', () => {
  const url = process.env.DATABASE_URL!;
  const { database: t, schema: runSchema, sqs, extraSchema } = useOrcaSchema({
    prefix: 'orca_cli_run',
    buckets: [BUCKET],
    sqs: true,
    emptyTablesBeforeEach: true,
  });

  /** A schema for the `schema` command to create, dropped with the run schema. */
  const newSchema = (): string => extraSchema('orca_cli_schema');
  const tablesOf = async (schema: string): Promise<string[]> =>
    (
      await t.query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name COLLATE "C"`,
        [schema],
      )
    ).map((row) => row.name);

  it('schema --progress creates only the progress tables; --print writes their SQL without connecting', async () => {
    // Prepare
    const schema = newSchema();

    // Act
    const created = await cli(['schema', '--database-url', url, '--schema', schema, '--progress']);
    const again = await cli(['schema', '--database-url', url, '--schema', schema, '--progress']);
    const printed = await cli(['schema', '--schema', schema, '--progress', '--print', '--database-url', 'postgres://nobody@127.0.0.1:1/none']);
    const printAlone = await cli(['schema', '--print']);

    // Assess
    expect(created).toEqual({ code: 0, stdout: `progress tables ready in schema "${schema}": orca_reconcile_run, orca_reconcile_piece\n`, stderr: '' });
    expect(again).toEqual(created);
    expect(await tablesOf(schema)).toEqual(['orca_reconcile_piece', 'orca_reconcile_run']);
    expect(printed).toEqual({ code: 0, stdout: progressTablesSql(schema), stderr: '' });
    expect(printed.stdout).toContain(`CREATE TABLE IF NOT EXISTS "${schema}".orca_reconcile_run (`);
    expect(printAlone.code).toBe(2);
    expect(printAlone.stderr).toContain('--print goes with --progress');
  });

  it('schema: creates the tables, runs again without change, and adds a partition for a new bucket', async () => {
    // Prepare
    const schema = newSchema();
    const argv = ['schema', '--database-url', url, '--schema', schema, '--bucket', BUCKET];

    // Act
    const first = await cli(argv);
    const tablesAfterFirst = await tablesOf(schema);
    await insertJob(t, schema, BUCKET);
    const second = await cli(argv);
    const third = await cli([...argv, '--bucket', OTHER_BUCKET]);

    // Assess
    expect(first).toEqual({ code: 0, stdout: `schema "${schema}" ready; inventory partitions: ${BUCKET}\n`, stderr: '' });
    expect(tablesAfterFirst).toEqual([
      'collections',
      'files',
      'granules',
      'orca_reconcile_piece',
      'orca_reconcile_run',
      'providers',
      'reconcile_catalog_mismatch_report',
      'reconcile_job',
      'reconcile_orphan_report',
      'reconcile_phantom_report',
      'reconcile_s3_object',
      'reconcile_s3_object_prefix_orca_primary',
      'reconcile_status',
      'storage_class',
    ]);
    expect(second).toEqual(first);
    expect(await t.query(`SELECT count(*)::int AS n FROM "${schema}".reconcile_job`)).toEqual([{ n: 1 }]);
    expect(await t.query(`SELECT count(*)::int AS n FROM "${schema}".reconcile_status`)).toEqual([{ n: 5 }]);
    expect(third).toEqual({
      code: 0,
      stdout: `schema "${schema}" ready; inventory partitions: ${BUCKET}, ${OTHER_BUCKET}\n`,
      stderr: '',
    });
    expect(await tablesOf(schema)).toEqual(
      [...tablesAfterFirst, 'reconcile_s3_object_prefix_orca_secondary'].sort(),
    );
  });

  it('schema: a bucket whose partition name is not an identifier is exit 2 naming --bucket; nothing is created', async () => {
    // Prepare
    const schema = newSchema();

    // Act
    const result = await cli(['schema', '--database-url', url, '--schema', schema, '--bucket', BUCKET, '--bucket', 'my.archive.bucket']);

    // Assess
    expectOneLineError(result, 2, /--bucket "my\.archive\.bucket" gives the partition name "reconcile_s3_object_my\.archive\.bucket"/);
    expect(await t.query('SELECT to_regnamespace($1) AS found', [`"${schema}"`])).toEqual([{ found: null }]);
  });

  it('run: reconciles a staged job, prints one summary line and leaves the job success', async () => {
    // Prepare
    const jobId = await insertJob(t, runSchema, BUCKET);
    const keys = await seedOneOfEachReport(t, runSchema, jobId, BUCKET);

    // Act
    const result = await cli(['run', '--database-url', url, '--schema', runSchema, '--job-id', String(jobId), '--location', BUCKET]);

    // Assess
    expect(result).toEqual({ code: 0, stdout: `job ${jobId} success: 1 phantom, 1 orphan, 1 mismatch\n`, stderr: '' });
    expect((await readJob(t, runSchema, jobId)).status_id).toBe(OrcaStatus.Success);
    const reports = await readReports(t, runSchema, jobId);
    expect(reports.phantoms.map((row) => row['key_path'])).toEqual([keys.phantom]);
    expect(reports.orphans.map((row) => row['key_path'])).toEqual([keys.orphan]);
    expect(reports.mismatches.map((row) => row['key_path'])).toEqual([keys.mismatch]);
  });

  it('run --pieces on a terminal: a progress bar on stderr that ends at every piece done, then the summary', async () => {
    // Prepare
    const jobId = await seedArchive(t, runSchema, BUCKET, 1000);
    const memory = memoryIO({}, { tty: true });

    // Act
    const code = await runCli(
      ['run', '--database-url', url, '--schema', runSchema, '--job-id', String(jobId), '--location', BUCKET, '--pieces', '4', '--concurrency', '2'],
      memory.io,
    );

    // Assess
    const expected = archiveCounts(1000);
    expect(code).toBe(0);
    expect(memory.stdout()).toBe(`job ${jobId} success: ${expected.phantoms} phantoms, ${expected.orphans} orphans, ${expected.mismatches} mismatches\n`);
    // Each frame starts with a carriage return and ends by clearing the rest of the line.
    const frames = memory.stderr().split('\r').filter((frame) => frame !== '').map((frame) => frame.replace('\u001b[K', ''));
    expect(frames[0]).toBe(`[${'-'.repeat(24)}] 0/4 pieces  0 of 1,960 files  --:-- left`);
    expect(frames.at(-1)).toBe(`[${'#'.repeat(24)}] 4/4 pieces  1,960 of 1,960 files  done\n`);
    expect(frames).toHaveLength(5);
    expect((await readJob(t, runSchema, jobId)).status_id).toBe(OrcaStatus.Success);
  });

  it('run --pieces off a terminal draws no bar; --concurrency without --pieces is exit 2', async () => {
    const jobId = await seedArchive(t, runSchema, BUCKET, 100);
    const piped = await cli(['run', '--database-url', url, '--schema', runSchema, '--job-id', String(jobId), '--location', BUCKET, '--pieces', 'auto']);
    expect(piped).toEqual({ code: 0, stdout: `job ${jobId} success: 2 phantoms, 2 orphans, 6 mismatches\n`, stderr: '' });
    const alone = await cli(['run', '--database-url', url, '--job-id', '1', '--location', BUCKET, '--concurrency', '2']);
    expectOneLineError(alone, 2, /--concurrency needs --pieces/);
    const bad = await cli(['run', '--database-url', url, '--job-id', '1', '--location', BUCKET, '--pieces', '0']);
    expectOneLineError(bad, 2, /--pieces must be auto or a whole number from 1 to 1024/);
  });

  it('run --json: prints the output object as one line of JSON', async () => {
    // Prepare
    const jobId = await insertJob(t, runSchema, BUCKET);
    await seedOneOfEachReport(t, runSchema, jobId, BUCKET);

    // Act
    const result = await cli(['run', '--database-url', url, '--schema', runSchema, '--job-id', String(jobId), '--location', BUCKET, '--json']);

    // Assess
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^\{[^\n]*\}\n$/);
    expect(JSON.parse(result.stdout)).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
  });

  it('run --verbose: the library log lines go to stderr, the summary to stdout', async () => {
    const jobId = await insertJob(t, runSchema, BUCKET);
    await seedOneOfEachReport(t, runSchema, jobId, BUCKET);
    const result = await cli(['run', '--database-url', url, '--schema', runSchema, '--job-id', String(jobId), '--location', BUCKET, '--verbose']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`job ${jobId} success: 1 phantom, 1 orphan, 1 mismatch\n`);
    expect(result.stderr).toMatch(/^info reconciliation finished \{"jobId":\d+,"orcaArchiveLocation":"prefix-orca-primary",/m);
  });

  it('run with --queue-url, --receipt-handle and --sqs-endpoint: deletes the job message from the queue', async () => {
    // Prepare
    const queue = await sqs.createQueue({ fifo: true });
    const { jobId, message } = await stageJob(t, runSchema, BUCKET, queue);
    expect(await queue.messagesLeft()).toBe(1);

    // Act
    const result = await cli(
      [
        'run', '--database-url', url, '--schema', runSchema, '--job-id', String(jobId), '--location', BUCKET,
        '--queue-url', queue.url, '--receipt-handle', message.receiptHandle,
        '--sqs-endpoint', sqs.endpoint,
      ],
      { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' },
    );

    // Assess
    expect(result).toEqual({
      code: 0,
      stdout: `job ${jobId} success: 1 phantom, 1 orphan, 1 mismatch; message deleted\n`,
      stderr: '',
    });
    expect(await queue.messagesLeft()).toBe(0);
    expect((await readJob(t, runSchema, jobId)).status_id).toBe(OrcaStatus.Success);
  });

  it('run with --queue-url but no --receipt-handle: exit 2 naming it; neither the job nor the queue changes', async () => {
    // Prepare
    const queue = await sqs.createQueue({ fifo: true });
    const { jobId } = await stageJob(t, runSchema, BUCKET, queue);

    // Act
    const result = await cli(
      ['run', '--database-url', url, '--schema', runSchema, '--job-id', String(jobId), '--location', BUCKET, '--queue-url', queue.url],
      { AWS_REGION: 'us-east-1' },
    );

    // Assess
    expectOneLineError(result, 2, /--receipt-handle is required with --queue-url/);
    expect((await readJob(t, runSchema, jobId)).status_id).toBe(OrcaStatus.Staged);
    expect(await queue.messagesLeft()).toBe(1);
  });

  it('run: an unknown job is exit 1 with one line', async () => {
    const result = await cli(['run', '--database-url', url, '--schema', runSchema, '--job-id', '987654321', '--location', BUCKET]);
    expect(result).toEqual({ code: 1, stdout: '', stderr: 'orca-reconcile: reconcile_job 987654321 does not exist\n' });
  });
});
