import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { OrcaStatus, generateReports } from '../../src/index.js';
import { seedArchive } from '../helpers/archive.js';
import { memoryIO, tableRows } from '../helpers/cli-io.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { closedLoopbackPort } from '../helpers/faults.js';
import { insertJob, insertReportRows, reportRow } from '../helpers/rows.js';

const PRIMARY = 'prefix-orca-primary';
const SECONDARY = 'prefix-orca-secondary';
const UNUSED_URL = 'postgres://orca@127.0.0.1:1/orca';
const LONG_ERROR = 'the listing of job 9\nand its "bucket" were replaced by a newer one, so this message goes on for the table to cut';

interface SeededJob {
  id: number;
  bucket: string;
  status: string;
  errorMessage: string | null;
  phantoms: number;
  orphans: number;
  mismatches: number;
}

describe('orca-reconcile jobs', () => {
  // The CLI takes a URL, so only the real server can answer it.
  const { database: t, schema } = useOrcaSchema({
    prefix: 'orca_cli_jobs',
    buckets: [PRIMARY, SECONDARY],
    serverOnly: true,
  });
  const databaseUrl = process.env.DATABASE_URL ?? UNUSED_URL;
  /** Oldest first. */
  const seeded: SeededJob[] = [];

  async function seedJob(bucket: string, status: OrcaStatus, statusName: string, counts: [number, number, number], errorMessage: string | null = null) {
    const id = await insertJob(t, schema, bucket, status);
    if (errorMessage !== null) {
      await t.query(`UPDATE "${schema}".reconcile_job SET error_message = $2, end_time = last_update WHERE id = $1`, [id, errorMessage]);
    }
    const [phantoms, orphans, mismatches] = counts;
    await insertReportRows(t, schema, 'phantom', Array.from({ length: phantoms }, (_v, i) => reportRow('phantom', id, i)));
    await insertReportRows(t, schema, 'orphan', Array.from({ length: orphans }, (_v, i) => reportRow('orphan', id, i)));
    await insertReportRows(t, schema, 'mismatch', Array.from({ length: mismatches }, (_v, i) => reportRow('mismatch', id, i)));
    seeded.push({ id, bucket, status: statusName, errorMessage, phantoms, orphans, mismatches });
  }

  beforeAll(async () => {
    if (!usingPostgres) return;
    await seedJob(PRIMARY, OrcaStatus.Success, 'success', [2, 1, 0]);
    await seedJob(SECONDARY, OrcaStatus.Error, 'error', [0, 0, 0], LONG_ERROR);
    await seedJob(PRIMARY, OrcaStatus.Staged, 'staged', [0, 3, 1]);
    await seedJob(SECONDARY, OrcaStatus.GeneratingReports, 'generating reports', [1, 0, 4]);
  });

  async function run(...args: string[]) {
    const output = memoryIO({});
    const code = await runCli(['jobs', '--database-url', databaseUrl, '--schema', schema, ...args], output.io);
    return { code, ...output };
  }

  const newestFirst = () => [...seeded].reverse();

  it.runIf(usingPostgres)('lists the jobs newest first in a table with status names and report counts', async () => {
    const result = await run();

    expect({ code: result.code, stderr: result.stderr() }).toEqual({ code: 0, stderr: '' });
    const [header, ...rows] = tableRows(result.stdout());
    expect(header).toEqual(['id', 'bucket', 'status', 'start_time', 'last_update', 'end_time', 'error_message', 'phantoms', 'orphans', 'mismatches', 'pieces']);
    expect(rows.map((cells) => [cells[0], cells[1], cells[2], cells[7], cells[8], cells[9]])).toEqual(
      newestFirst().map((job) => [String(job.id), job.bucket, job.status, String(job.phantoms), String(job.orphans), String(job.mismatches)]),
    );
    const errorCell = rows.find((cells) => cells[2] === 'error')![6]!;
    expect(errorCell.endsWith('…')).toBe(true);
    expect([...errorCell].length).toBe(60);
    expect(errorCell).toContain('job 9\\nand');
    expect(rows[0]![3]).toBe('2026-01-01T01:00:00.000Z');
  });

  it.runIf(usingPostgres)('prints a JSON array with full error messages under --json', async () => {
    const result = await run('--json');

    expect(result.code).toBe(0);
    const jobs = JSON.parse(result.stdout()) as Record<string, unknown>[];
    expect(jobs).toEqual(
      newestFirst().map((job) => ({
        id: job.id,
        orcaArchiveLocation: job.bucket,
        statusId: expect.any(Number),
        status: job.status,
        startTime: '2026-01-01T01:00:00.000Z',
        lastUpdate: '2026-01-01T01:00:00.000Z',
        endTime: job.errorMessage === null ? null : '2026-01-01T01:00:00.000Z',
        errorMessage: job.errorMessage,
        phantoms: job.phantoms,
        orphans: job.orphans,
        mismatches: job.mismatches,
        run: null,
      })),
    );
  });

  it.runIf(usingPostgres)('keeps to one bucket with --location and to N jobs with --limit', async () => {
    const primary = await run('--json', '--location', PRIMARY);
    const limited = await run('--json', '--limit', '2');
    const both = await run('--json', '--limit', '1', '--location', SECONDARY);

    const ids = (result: { stdout(): string }) => (JSON.parse(result.stdout()) as { id: number }[]).map((job) => job.id);
    expect(ids(primary)).toEqual(newestFirst().filter((job) => job.bucket === PRIMARY).map((job) => job.id));
    expect(ids(limited)).toEqual(newestFirst().slice(0, 2).map((job) => job.id));
    expect(ids(both)).toEqual([newestFirst().find((job) => job.bucket === SECONDARY)!.id]);
  });

  it.runIf(usingPostgres)('shows the header alone when no job matches', async () => {
    const result = await run('--location', 'prefix-orca-unknown');
    const json = await run('--json', '--location', 'prefix-orca-unknown');

    expect(tableRows(result.stdout())).toHaveLength(1);
    expect(JSON.parse(json.stdout())).toEqual([]);
  });

  it.each([
    ['--limit', '0'],
    ['--limit', '1001'],
    ['--limit', 'ten'],
    ['--location', 'not/a/bucket'],
    ['--schema', 'bad-name'],
  ])('rejects %s %s with exit 2 and one line naming the flag', async (flag, value) => {
    const output = memoryIO({});

    const code = await runCli(['jobs', '--database-url', UNUSED_URL, flag, value], output.io);

    expect(code).toBe(2);
    expect(output.stdout()).toBe('');
    expect(output.stderrLines()).toHaveLength(1);
    expect(output.stderrLines()[0]).toContain(flag);
  });

  it('fails with exit 1 in one line, without the password, when the server refuses', async () => {
    const password = 'jobs-Pa55-secret';
    const output = memoryIO({ DATABASE_URL: `postgres://orca:${password}@127.0.0.1:${await closedLoopbackPort()}/orca` });

    const code = await runCli(['jobs'], output.io);

    expect(code).toBe(1);
    expect(output.stderrLines()).toHaveLength(1);
    expect(output.stderrLines()[0]).toMatch(/^orca-reconcile: connect to the database of DATABASE_URL failed: .*ECONNREFUSED/);
    expect(output.stdout() + output.stderr()).not.toContain(password);
  });

  it('--help describes the flags with examples', async () => {
    const output = memoryIO({});

    const code = await runCli(['jobs', '--help'], output.io);

    expect(code).toBe(0);
    for (const text of ['--database-url', '--location', '--limit', '--schema', '--json', 'Examples:', 'newest first']) {
      expect(output.stdout()).toContain(text);
    }
  });
});

describe('orca-reconcile jobs shows how far a pieced job has got', () => {
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_cli_jobs_pieces', buckets: [PRIMARY, SECONDARY], serverOnly: true });

  it.runIf(usingPostgres)('pieces done of the total for an unfinished run, "done" once finished, in the table, csv and json', async () => {
    // Prepare: a run stopped after two of five pieces, and a job that finished in three.
    const stopped = await seedArchive(t, schema, PRIMARY, 500);
    const controller = new AbortController();
    await expect(
      generateReports(t.db, { jobId: stopped, orcaArchiveLocation: PRIMARY }, {
        schema,
        pieces: 5,
        signal: controller.signal,
        onProgress: (progress) => progress.piecesDone === 2 && controller.abort(),
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    const finished = await seedArchive(t, schema, SECONDARY, 300);
    await generateReports(t.db, { jobId: finished, orcaArchiveLocation: SECONDARY }, { schema, pieces: 3 });
    const run = async (...args: string[]) => {
      const output = memoryIO({});
      await runCli(['jobs', '--database-url', process.env.DATABASE_URL!, '--schema', schema, ...args], output.io);
      return output.stdout();
    };

    // Act
    const table = tableRows(await run('--format', 'table'));
    const csv = (await run('--format', 'csv')).split('\r\n');
    const json = JSON.parse(await run('--json')) as { id: number; run: Record<string, unknown> | null }[];

    // Assess
    expect(table.slice(1).map((cells) => [cells[0], cells[10]])).toEqual([[String(finished), '3/3 done'], [String(stopped), '2/5']]);
    expect(csv[0]!.split(',').at(-1)).toBe('pieces');
    expect(csv.slice(1, 3).map((line) => line.split(',').at(-1))).toEqual(['3/3 done', '2/5']);
    expect(json.map((job) => [job.id, job.run])).toEqual([
      [finished, { runId: expect.any(Number), pieces: 3, piecesDone: 3, filesDone: 294 + 294, finished: true }],
      [stopped, { runId: expect.any(Number), pieces: 5, piecesDone: 2, filesDone: Math.trunc(((490 + 490) * 2) / 5), finished: false }],
    ]);
  });
});
