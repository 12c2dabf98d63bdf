import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
describe('orca-reconcile report memory', () => {
  // Dropping the schema after the file drops the million rows with it.
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_cli_memory', buckets: [BUCKET], serverOnly: true });
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'orca-cli-memory-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  /** `count` orphan rows for a new job, in one set-based statement. */
  async function seedOrphans(count: number): Promise<number> {
    const jobId = await insertJob(t, schema, BUCKET);
    await t.query(
      `INSERT INTO "${schema}".reconcile_orphan_report (job_id, key_path, etag, last_update, size_in_bytes, storage_class)
       SELECT $1, 'granules/' || lpad(g::text, 8, '0') || '/file.h5', '"' || md5(g::text) || '"',
              timestamptz '2026-01-01T00:00:00Z' + g * interval '1 second', g::int8 * 1024, 'GLACIER'
       FROM generate_series(1, $2::int) AS g`,
      [jobId, count],
    );
    return jobId;
  }

  /** The CLI in a child process of its own, so its peak RSS is its alone. */
  async function exportToFile(jobId: number, file: string): Promise<Run> {
    const rssFile = `${file}.rss`;
    const started = Date.now();
    const child = spawn(
      process.execPath,
      [...V8_HEAP_FLAGS, '--import', 'tsx', 'test/helpers/cli-rss.ts', rssFile, 'report', '--database-url', process.env.DATABASE_URL!,
        '--schema', schema, '--job-id', String(jobId), '--kind', 'orphan', '--format', 'csv', '--out', file],
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

  it.runIf(usingPostgres)(
    'streams a million-row report to a file in flat memory, with progress on stderr',
    async () => {
      // Prepare
      const big = await seedOrphans(BIG);
      const small = await seedOrphans(SMALL);
      const bigFile = join(directory, 'big.csv');
      const smallFile = join(directory, 'small.csv');

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
      const lines = bigRun.stderr.split('\n').filter((line) => line !== '');
      expect(lines.at(-1)).toBe(`wrote ${BIG} rows to ${bigFile}`);
      const progress = lines.slice(0, -1).map((line) => {
        const match = /^(\d+) rows written so far$/.exec(line);
        expect(match, line).not.toBeNull();
        return Number(match![1]);
      });
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      expect(progress.every((rows) => rows > 0 && rows <= BIG)).toBe(true);
      expect(progress.length).toBeLessThanOrEqual(Math.ceil(bigRun.elapsedMs / 1000) + 1);
      if (bigRun.elapsedMs > 2_500) expect(progress.length).toBeGreaterThan(0);
      console.info(
        `report memory: ${BIG} rows in ${bigRun.elapsedMs} ms, peak RSS ${Math.round(bigRun.maxRssKiB / MiB)} MiB; ` +
          `${SMALL} rows in ${smallRun.elapsedMs} ms, peak RSS ${Math.round(smallRun.maxRssKiB / MiB)} MiB`,
      );
    },
    120_000,
  );
});
