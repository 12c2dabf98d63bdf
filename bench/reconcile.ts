// Benchmark: generateReports against the three-statement baseline and the FULL JOIN floor.
// The timed runs use the TypeScript source through tsx; the memory probe uses the built package.
//
//   npm run bench -- --files 1000000 [--runs 5] [--rate 0.005] [--reuse] [--explain] [--no-docs]
//   npm run bench -- --pieces --files 10000000 [--runs 2] [--reuse] [--no-docs]
//
// With --pieces it compares the single statement with pieced runs of 1 and 2 workers instead
// (bench/pieces.ts), in the same seeded schema.
//
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) names the server; the benchmark
// works in its own schema, orca_bench_<files>, which it keeps for --reuse.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { generateReports } from '../src/index.js';
import { runReferenceReports } from '../test/helpers/reference-reports.js';
import { runPiecesBench } from './pieces.js';
import { writeResults } from './report.js';
import { BUCKET, type Rates, seed } from './seed.js';

const { values: args } = parseArgs({
  options: {
    files: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    rate: { type: 'string', default: '0.005' },
    schema: { type: 'string' },
    reuse: { type: 'boolean', default: false },
    explain: { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    'session-work-mem': { type: 'string' },
    pieces: { type: 'boolean', default: false },
  },
});

const files = Number(args.files);
const runs = Number(args.runs);
const rate = Number(args.rate);
if (!Number.isSafeInteger(files) || files < 10) throw new Error('--files must be an integer of at least 10');
if (!Number.isSafeInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
if (!(rate >= 0 && rate <= 0.05)) throw new Error('--rate must be between 0 and 0.05');
const rates: Rates = { phantom: rate, orphan: rate, etag: rate, size: rate, storageClass: rate };
const schema = args.schema ?? `orca_bench_${files}`;
const quoted = `"${schema}"`;
const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const pool = new pg.Pool({
  connectionString: url,
  max: 2,
  options: args['session-work-mem'] ? `-c work_mem=${args['session-work-mem']}` : undefined,
});

const FLOOR_SQL = `
SELECT count(*) AS joined
FROM (SELECT key_path FROM ${quoted}.files WHERE orca_archive_location = $1) AS c
FULL JOIN (SELECT key_path FROM ${quoted}.reconcile_s3_object WHERE orca_archive_location = $1) AS i
  ON i.key_path = c.key_path`;

const REPORT_TABLES = ['reconcile_phantom_report', 'reconcile_orphan_report', 'reconcile_catalog_mismatch_report'];

async function clearReports(jobId: number): Promise<void> {
  for (const table of REPORT_TABLES) await pool.query(`DELETE FROM ${quoted}.${table} WHERE job_id = $1`, [jobId]);
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

async function reuseOrSeed() {
  if (args.reuse) {
    const found = await pool.query(
      `SELECT (SELECT id FROM ${quoted}.reconcile_job WHERE orca_archive_location = $1) AS job_id,
              (SELECT count(*) FROM ${quoted}.files WHERE orca_archive_location = $1) AS files`,
      [BUCKET],
    ).catch(() => undefined);
    const row = found?.rows[0] as { job_id: string; files: string } | undefined;
    if (row && Number(row.files) === files) {
      console.log(`reusing ${schema}`);
      return { jobId: Number(row.job_id), seedMs: undefined, expected: undefined };
    }
  }
  console.log(`seeding ${schema}: 2 buckets x ${files.toLocaleString('en-US')} files ...`);
  let result: Awaited<ReturnType<typeof seed>> | undefined;
  const seedMs = await timed(async () => {
    result = await seed(pool, schema, files, rates);
  });
  console.log(`seeded in ${(seedMs / 1000).toFixed(1)} s`);
  return { jobId: result!.jobId, seedMs, expected: result!.expected };
}

/** Rows of the job's three reports, as sorted text, for an exact comparison. */
async function reportFingerprint(jobId: number): Promise<string[]> {
  const out: string[] = [];
  for (const table of REPORT_TABLES) {
    const { rows } = await pool.query(
      `SELECT md5(string_agg(r::text, E'\\n' ORDER BY r::text COLLATE "C")) AS digest, count(*) AS n
       FROM (SELECT to_jsonb(t) - 'job_id' AS r FROM ${quoted}.${table} t WHERE job_id = $1) AS x`,
      [jobId],
    );
    out.push(`${table}:${rows[0].n}:${rows[0].digest}`);
  }
  return out;
}

async function explain(jobId: number): Promise<Record<string, string>> {
  const client = await pool.connect();
  const captured: { text: string; values: unknown[] }[] = [];
  try {
    // Run once through a recording client to get the exact statements the library sends.
    const recorder = {
      query: (text: string, values: unknown[] = []) => {
        captured.push({ text, values });
        return client.query(text, values);
      },
    };
    await generateReports(recorder, { jobId, orcaArchiveLocation: BUCKET }, { schema });
    const ours = captured.find(({ text }) => text.includes('FULL JOIN'));
    if (!ours) throw new Error('the report statement was not captured');
    // Session settings the library makes for its transaction (work_mem, timeouts) apply to the plan too.
    const settings = captured.filter(({ text }) => text.includes('set_config('));
    const deletes = REPORT_TABLES.map((table) => ({ text: `DELETE FROM ${quoted}.${table} WHERE job_id = $1`, values: [jobId] }));
    const plans: Record<string, string> = {};
    const plan = async (name: string, sql: string, values: unknown[], prefix: typeof captured = []) => {
      await client.query('BEGIN');
      try {
        for (const statement of prefix) await client.query(statement.text, statement.values);
        const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, values);
        plans[name] = rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
      } finally {
        await client.query('ROLLBACK');
      }
    };
    await plan('generateReports (the report statement)', ours.text, ours.values, [...settings, ...deletes]);
    await plan('floor (FULL JOIN and count)', FLOOR_SQL, [BUCKET]);
    return plans;
  } finally {
    client.release();
  }
}

async function main() {
  const { jobId, seedMs, expected } = await reuseOrSeed();
  if (args.pieces) {
    await pool.end();
    await runPiecesBench({
      files,
      runs: Number(args.runs),
      schema,
      url,
      writeDocs: !args['no-docs'],
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    });
    return;
  }
  const samples: Record<'baseline' | 'ours' | 'floor', number[]> = { baseline: [], ours: [], floor: [] };
  for (let round = 1; round <= runs; round += 1) {
    await clearReports(jobId);
    samples.baseline.push(await timed(() => runReferenceReports(pool, quoted, jobId, BUCKET)));
    await clearReports(jobId);
    samples.ours.push(await timed(() => generateReports(pool, { jobId, orcaArchiveLocation: BUCKET }, { schema })));
    samples.floor.push(await timed(() => pool.query(FLOOR_SQL, [BUCKET])));
    console.log(
      `round ${round}: baseline ${fmt(samples.baseline.at(-1)!)}  ours ${fmt(samples.ours.at(-1)!)}  floor ${fmt(samples.floor.at(-1)!)}`,
    );
  }

  // Same reports from both implementations, and the counts the seed planted.
  await clearReports(jobId);
  const baselineCounts = await runReferenceReports(pool, quoted, jobId, BUCKET);
  const baselineRows = await reportFingerprint(jobId);
  const oursCounts = await generateReports(pool, { jobId, orcaArchiveLocation: BUCKET }, { schema });
  const oursRows = await reportFingerprint(jobId);
  const identical = baselineRows.join() === oursRows.join();
  const seeded = expected ? JSON.stringify(expected) === JSON.stringify(oursCounts) : undefined;
  console.log(`reports identical: ${identical}; counts ${JSON.stringify(oursCounts)} (baseline ${JSON.stringify(baselineCounts)})`);
  if (seeded !== undefined) console.log(`counts equal the seeded discrepancies: ${seeded}`);

  // The library alone, in a process of its own, as in a Lambda container.
  const libraryPeakRssBytes = Number(
    execFileSync(process.execPath, [new URL('./rss-probe.ts', import.meta.url).pathname, url, schema, String(jobId), BUCKET], {
      encoding: 'utf8',
    }),
  );
  const plans = args.explain ? await explain(jobId) : {};
  const settings = await pool.query(
    `SELECT name, setting, unit FROM pg_settings
     WHERE name IN ('work_mem', 'hash_mem_multiplier', 'shared_buffers', 'effective_cache_size',
                    'max_parallel_workers_per_gather', 'jit', 'random_page_cost', 'server_version')
     ORDER BY name`,
  );
  const results = {
    files,
    runs,
    rate,
    seedMs,
    samples,
    identical,
    seeded,
    counts: oursCounts,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    libraryPeakRssBytes,
    settings: settings.rows.map((r: { name: string; setting: string; unit: string | null }) => `${r.name}=${r.setting}${r.unit ?? ''}`),
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}`,
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    plans,
  };
  const table = writeResults(results, !args['no-docs']);
  console.log(table);
  await pool.end();
  if (!identical) process.exitCode = 1;
}

function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

await main();
