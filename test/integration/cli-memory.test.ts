import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OrcaStatus } from '../../src/index.js';
import { useTempDirectory } from '../helpers/cli-io.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { insertJob } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
const BIG = 1_000_000;
const SMALL = 100_000;
const MiB = 1024;
/**
 * V8 sizes its heap from the machine's memory: on a large machine it lets the young generation
 * alone grow to 128 MB and delays full collections, so peak RSS would measure V8's pacing rather
 * than what the command keeps (live heap stays near 14 MB through a million rows). These caps are
 * what a small container would get; with 64 MB of old space a report held in memory would end the
 * process with an out-of-memory error instead of merely showing a bigger number.
 */
const V8_HEAP_FLAGS = ['--max-semi-space-size=8', '--max-old-space-size=64'];

interface Run {
  code: number | null;
  /** Peak resident set size of the CLI process, KiB. */
  maxRssKiB: number;
  stderr: string;
  elapsedMs: number;
}

/** Newline bytes in a file, read as a stream so the test itself stays small too. */
async function countLines(file: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(file)) {
    const bytes = chunk as Buffer;
    for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) lines += 1;
  }
  return lines;
}

async function lastBytes(file: string, count: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.min(count, size));
    await handle.read(buffer, 0, buffer.length, size - buffer.length);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

// Real server only: the command line connects by URL.
describe('orca-reconcile report and diff memory', () => {
  // Dropping the schema after the file drops the million rows with it.
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_cli_memory', buckets: [BUCKET], serverOnly: true });
  const directory = useTempDirectory('orca-cli-memory-');

  /**
   * A new job with orphan rows for keys `first` to `first + count - 1`, in one set-based
   * statement. Every row of a key is the same in every job.
   */
  async function seedOrphans(count: number, { first = 1, status = OrcaStatus.Staged }: { first?: number; status?: OrcaStatus } = {}): Promise<number> {
    const jobId = await insertJob(t, schema, BUCKET, status);
    await t.query(
      `INSERT INTO "${schema}".reconcile_orphan_report (job_id, key_path, etag, last_update, size_in_bytes, storage_class)
       SELECT $1, 'granules/' || lpad(g::text, 8, '0') || '/file.h5', '"' || md5(g::text) || '"',
              timestamptz '2026-01-01T00:00:00Z' + g * interval '1 second', g::int8 * 1024, 'GLACIER'
       FROM generate_series($3::int, $3::int + $2::int - 1) AS g`,
      [jobId, count, first],
    );
    return jobId;
  }

  /** `command` with `argv` and `--out file` in a child process of its own, so its peak RSS is its alone. */
  async function runToFile(command: string, argv: string[], file: string): Promise<Run> {
    const rssFile = `${file}.rss`;
    const started = Date.now();
    const child = spawn(
      process.execPath,
      [...V8_HEAP_FLAGS, '--import', 'tsx', 'test/helpers/cli-rss.ts', rssFile, command, '--database-url', process.env.DATABASE_URL!,
        '--schema', schema, ...argv, '--out', file],
      { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    expect(stdout).toBe('');
    return { code, maxRssKiB: Number(await readFile(rssFile, 'utf8')), stderr, elapsedMs: Date.now() - started };
  }

  /** Reports of BIG and SMALL orphans, seeded once for the file; both jobs are `success`, so diff can compare with them. */
  let seeded: Promise<{ big: number; small: number }> | undefined;
  const seededReports = () =>
    (seeded ??= (async () => ({
      big: await seedOrphans(BIG, { status: OrcaStatus.Success }),
      small: await seedOrphans(SMALL, { status: OrcaStatus.Success }),
    }))());

  const exportToFile = (jobId: number, file: string): Promise<Run> =>
    runToFile('report', ['--job-id', String(jobId), '--kind', 'orphan', '--format', 'csv'], file);

  /** Progress lines of a run to `file`: increasing counts, at most about one a second, then the final line. */
  function expectProgress(run: Run, rows: number, file: string, before: string[] = []): void {
    const lines = run.stderr.split('\n').filter((line) => line !== '');
    expect(lines.slice(0, before.length)).toEqual(before);
    expect(lines.at(-1)).toBe(`wrote ${rows} rows to ${file}`);
    const progress = lines.slice(before.length, -1).map((line) => {
      const match = /^(\d+) rows written so far$/.exec(line);
      expect(match, line).not.toBeNull();
      return Number(match![1]);
    });
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.every((count) => count > 0 && count <= rows)).toBe(true);
    expect(progress.length).toBeLessThanOrEqual(Math.ceil(run.elapsedMs / 1000) + 1);
    if (run.elapsedMs > 2_500) expect(progress.length).toBeGreaterThan(0);
  }

  it.runIf(usingPostgres)(
    'streams a million-row report to a file in flat memory, with progress on stderr',
    async () => {
      // Prepare
      const { big, small } = await seededReports();
      const bigFile = join(directory(), 'big.csv');
      const smallFile = join(directory(), 'small.csv');

      // Act
      const smallRun = await exportToFile(small, smallFile);
      const bigRun = await exportToFile(big, bigFile);

      // Assess: complete output.
      expect([smallRun.code, bigRun.code]).toEqual([0, 0]);
      expect(await countLines(bigFile)).toBe(BIG + 1);
      expect(await countLines(smallFile)).toBe(SMALL + 1);
      expect((await lastBytes(bigFile, 200)).split('\r\n').slice(-2)).toEqual([
        `${big},granules/01000000/file.h5,"""${createHash('md5').update(String(BIG)).digest('hex')}""",2026-01-12T13:46:40.000Z,1024000000,GLACIER`,
        '',
      ]);

      // Memory: bounded, and the same for ten times the rows.
      expect(bigRun.maxRssKiB).toBeLessThan(150 * MiB);
      expect(bigRun.maxRssKiB - smallRun.maxRssKiB).toBeLessThan(30 * MiB);

      // Progress: increasing counts, at most about one line a second, then the final line.
      expectProgress(bigRun, BIG, bigFile);
      console.info(
        `report memory: ${BIG} rows in ${bigRun.elapsedMs} ms, peak RSS ${Math.round(bigRun.maxRssKiB / MiB)} MiB; ` +
          `${SMALL} rows in ${smallRun.elapsedMs} ms, peak RSS ${Math.round(smallRun.maxRssKiB / MiB)} MiB`,
      );
    },
    120_000,
  );

  it.runIf(usingPostgres)(
    'streams the changes between two million-row reports to a file in flat memory',
    async () => {
      // Prepare: the seeded reports hold keys 1 to 1M and 1 to 100 000; the newer jobs hold keys
      // 500 001 to 1.5M and 50 001 to 150 000. So half of each is resolved, as many new and as
      // many unchanged (left out by default). --since names the earlier job: the small report's
      // job was seeded after the big one's, so it would be the newer big job's previous run.
      const { big: previousBig, small: previousSmall } = await seededReports();
      const big = await seedOrphans(BIG, { first: BIG / 2 + 1, status: OrcaStatus.Success });
      const small = await seedOrphans(SMALL, { first: SMALL / 2 + 1, status: OrcaStatus.Success });
      const bigFile = join(directory(), 'big-changes.ndjson');
      const smallFile = join(directory(), 'small-changes.ndjson');
      const diff = (jobId: number, since: number, file: string) =>
        runToFile('diff', ['--job-id', String(jobId), '--since', String(since), '--format', 'ndjson'], file);

      // Act
      const smallRun = await diff(small, previousSmall, smallFile);
      const bigRun = await diff(big, previousBig, bigFile);

      // Assess: complete output, the last row the last new key.
      expect([smallRun.code, bigRun.code]).toEqual([0, 0]);
      expect(await countLines(bigFile)).toBe(BIG);
      expect(await countLines(smallFile)).toBe(SMALL);
      const last = BIG + BIG / 2;
      const keyPath = `granules/${String(last).padStart(8, '0')}/file.h5`;
      const lastLine = (await lastBytes(bigFile, 400)).split('\n').at(-2)!;
      expect(JSON.parse(lastLine)).toEqual({
        kind: 'orphan',
        change: 'new',
        keyPath,
        current: {
          jobId: big,
          keyPath,
          etag: `"${createHash('md5').update(String(last)).digest('hex')}"`,
          lastUpdate: new Date(Date.parse('2026-01-01T00:00:00Z') + last * 1000).toISOString(),
          sizeInBytes: last * 1024,
          storageClass: 'GLACIER',
        },
      });

      // Memory: bounded, and the same for ten times the rows.
      expect(bigRun.maxRssKiB).toBeLessThan(150 * MiB);
      expect(bigRun.maxRssKiB - smallRun.maxRssKiB).toBeLessThan(30 * MiB);
      expectProgress(bigRun, BIG, bigFile, [`comparing job ${big} with job ${previousBig} of ${BUCKET}`]);
      expect(smallRun.stderr.split('\n')[0]).toBe(`comparing job ${small} with job ${previousSmall} of ${BUCKET}`);
      console.info(
        `diff memory: ${BIG} rows in ${bigRun.elapsedMs} ms, peak RSS ${Math.round(bigRun.maxRssKiB / MiB)} MiB; ` +
          `${SMALL} rows in ${smallRun.elapsedMs} ms, peak RSS ${Math.round(smallRun.maxRssKiB / MiB)} MiB`,
      );
    },
    120_000,
  );
});
