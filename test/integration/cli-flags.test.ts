import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { OrcaStatus } from '../../src/index.js';
import { memoryIO, tableRows } from '../helpers/cli-io.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { closedLoopbackPort } from '../helpers/faults.js';
import { insertReportRows, reportRow } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
/** Flag checks fail before any connection, so these tests need no server. */
const UNUSED_URL = 'postgres://orca@127.0.0.1:1/orca';
/** Above 2^53: a JavaScript number would round it to 9007199254740992. */
const BIG_JOB_ID = '9007199254740993';

async function cli(argv: string[], env: Record<string, string> = {}) {
  const output = memoryIO(env);
  const code = await runCli(argv, output.io);
  return { code, stdout: output.stdout(), stderr: output.stderr(), stderrLines: output.stderrLines() };
}

/** Every run of four characters of `secret`: no part of it long enough to guess from may be printed. */
const pieces = (secret: string): string[] => Array.from({ length: secret.length - 3 }, (_v, i) => secret.slice(i, i + 4));

describe('orca-reconcile flag values that hold a URL with credentials', () => {
  const password = 's3cretpass';
  const url = `postgres://u:${password}@h/db`;

  // A database URL pasted into the wrong flag, and every flag whose bad value an error repeats.
  const cases: [string, string[]][] = [
    ['run --job-id', ['run', '--database-url', UNUSED_URL, '--job-id', url, '--location', BUCKET]],
    ['report --job-id', ['report', '--database-url', UNUSED_URL, '--job-id', url, '--kind', 'orphan']],
    ['report --kind', ['report', '--database-url', UNUSED_URL, '--job-id', '1', '--kind', url]],
    ['report --format', ['report', '--database-url', UNUSED_URL, '--job-id', '1', '--kind', 'orphan', '--format', url]],
    ['report --batch-size', ['report', '--database-url', UNUSED_URL, '--job-id', '1', '--kind', 'orphan', '--batch-size', url]],
    ['run --location', ['run', '--database-url', UNUSED_URL, '--job-id', '1', '--location', url]],
    ['diff --job-id', ['diff', '--database-url', UNUSED_URL, '--job-id', url]],
    ['diff --since', ['diff', '--database-url', UNUSED_URL, '--job-id', '2', '--since', url]],
    ['diff --kind', ['diff', '--database-url', UNUSED_URL, '--job-id', '2', '--kind', url]],
    ['diff --change', ['diff', '--database-url', UNUSED_URL, '--job-id', '2', '--change', url]],
    ['jobs --schema', ['jobs', '--database-url', UNUSED_URL, '--schema', url]],
    ['jobs --limit', ['jobs', '--database-url', UNUSED_URL, '--limit', url]],
    ['schema --bucket', ['schema', '--database-url', UNUSED_URL, '--bucket', url]],
    ['demo --files', ['demo', '--files', url]],
    [
      'run --sqs-endpoint',
      ['run', '--database-url', UNUSED_URL, '--job-id', '1', '--location', BUCKET, '--queue-url', 'http://127.0.0.1:1/q', '--receipt-handle', 'AQEB', '--region', 'us-east-1', '--sqs-endpoint', `ftp://u:${password}@h/q`],
    ],
  ];

  it.each(cases)('%s: exit 2, one line naming the flag, no part of the password', async (name, argv) => {
    const result = await cli(argv);

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderrLines).toHaveLength(1);
    expect(result.stderrLines[0]).toMatch(/^orca-reconcile: /);
    expect(result.stderrLines[0]).toContain(name.split(' ')[1]);
    for (const piece of pieces(password)) expect(result.stderr).not.toContain(piece);
  });

  it('hides the whole password of a long URL, and of one with an unencoded "@" in its password', async () => {
    const long = 'abcdefghijklmnopqrstuvwxyz0123456789';
    const withAt = 'p@ss-w0rd-x';

    const first = await cli(['jobs', '--database-url', UNUSED_URL, '--limit', `postgresql://orca_user:${long}@db.example.org:5432/orca`]);
    const second = await cli(['jobs', '--database-url', UNUSED_URL, '--limit', `postgres://orca:${withAt}@db/orca`]);

    expect([first.code, second.code]).toEqual([2, 2]);
    for (const piece of pieces(long)) expect(first.stderr).not.toContain(piece);
    for (const piece of pieces(withAt)) expect(second.stderr).not.toContain(piece);
    // What is left still says what was wrong and where.
    expect(first.stderr).toContain('--limit');
    expect(first.stderr).toContain('db.example.org');
  });

  it('keeps a value with a line break to one line', async () => {
    const result = await cli(['jobs', '--database-url', UNUSED_URL, '--limit', '1\n2']);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^orca-reconcile: [^\n]+\n$/);
    expect(result.stderr).toContain('--limit');
  });

  it('names DATABASE_URL, not the flag, when the URL in the environment is malformed; its password is not printed', async () => {
    const result = await cli(['jobs'], { DATABASE_URL: `mysql://orca:${password}@db/orca` });

    expect(result.code).toBe(2);
    expect(result.stderrLines).toEqual(['orca-reconcile: DATABASE_URL must start with postgres:// or postgresql://']);
  });

  it('schema: reports an unreachable server before anything else, in one line without the password', async () => {
    const secret = 'schema-Pa55-never-shown';
    const closed = `postgres://orca:${secret}@127.0.0.1:${await closedLoopbackPort()}/orca`;

    const result = await cli(['schema', '--bucket', BUCKET], { DATABASE_URL: closed });

    expect(result.code).toBe(1);
    expect(result.stderrLines).toHaveLength(1);
    expect(result.stderrLines[0]).toMatch(/^orca-reconcile: create the ORCA tables failed: .*ECONNREFUSED/);
    expect(result.stderr).not.toContain(secret);
  });
});

describe('orca-reconcile jobs with an id above 2^53', () => {
  // The CLI takes a URL, so only the real server can answer it.
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_cli_flags', buckets: [BUCKET], serverOnly: true });

  beforeAll(async () => {
    if (!usingPostgres) return;
    await t.query(
      `INSERT INTO "${schema}".reconcile_job
         (id, orca_archive_location, status_id, inventory_creation_time, start_time, last_update)
       VALUES ($1::int8, $2, $3, '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z', '2026-01-01T01:00:00Z')`,
      [BIG_JOB_ID, BUCKET, OrcaStatus.Staged],
    );
    const orphans = [0, 1].map((index) => ({ ...reportRow('orphan', 1, index), jobId: BigInt(BIG_JOB_ID) }));
    await insertReportRows(t, schema, 'orphan', orphans);
  });

  const jobs = (...args: string[]) => cli(['jobs', '--database-url', process.env.DATABASE_URL!, '--schema', schema, ...args]);

  it.runIf(usingPostgres)('--json writes the id as the exact JSON number', async () => {
    const result = await jobs('--json');

    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(new RegExp(`"id": ${BIG_JOB_ID},`));
    const parsed = JSON.parse(result.stdout, (key, value: unknown, context?: { source?: string }) =>
      key === 'id' ? context!.source : value,
    ) as { id: string; orphans: number }[];
    expect(parsed.map((job) => [job.id, job.orphans])).toEqual([[BIG_JOB_ID, 2]]);
  });

  it.runIf(usingPostgres)('the table shows the exact id', async () => {
    const result = await jobs();

    expect(result.code).toBe(0);
    const [, row] = tableRows(result.stdout);
    expect(row?.[0]).toBe(BIG_JOB_ID);
  });
});
