// Benchmark of pieced runs: the single statement against pieces with 1 and with 2 workers, on a
// seeded archive (see seed.ts), and a section of docs/performance.md with the figures.
//
//   npm run bench -- --pieces --files 10000000 [--runs 2] [--reuse] [--no-docs]
//
// For each variant and round it measures the elapsed time, the database time (the sum of the
// time every statement took, over all connections), the largest piece, the temp bytes the
// server wrote (pg_stat_database.temp_bytes, before and after) and the peak RSS of this Node
// process during the run. The first round of each variant warms the cache and is not counted
// when there are more.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { generateReports } from '../src/index.js';
import { FILES_PER_PIECE } from '../src/pieces.js';
import { median, writeDocSection } from './report.js';
import { BUCKET, OTHER_BUCKET } from './seed.js';

export interface PiecesBenchOptions {
  files: number;
  runs: number;
  schema: string;
  url: string;
  writeDocs: boolean;
  command: string;
}

interface Sample {
  /** Plan and copies (until the first progress report), pieces, finish: elapsed each. */
  planMs: number;
  piecesMs: number;
  finishMs: number;
  elapsedMs: number;
  databaseMs: number;
  largestPieceMs: number;
  tempBytes: number;
  peakRssBytes: number;
  pieces: number;
}

type Variant = { name: string; pieces?: number | 'auto'; concurrency: number };

/** A pg pool whose statements are timed, on every connection it lends and on pool.query. */
function timedPool(pool: pg.Pool) {
  let busyMs = 0;
  const time = async <T>(work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      busyMs += performance.now() - started;
    }
  };
  const wrapped = {
    query: (text: string, values?: unknown[]) => time(() => pool.query(text, values)),
    connect: async () => {
      const client = await pool.connect();
      return {
        query: (text: string, values?: unknown[]) => time(() => client.query(text, values)),
        release: (error?: Error | boolean) => client.release(error),
      };
    },
    get totalCount() {
      return pool.totalCount;
    },
  };
  return { pool: wrapped, busyMs: () => busyMs, reset: () => (busyMs = 0) };
}

export async function runPiecesBench(options: PiecesBenchOptions): Promise<void> {
  const pool = new pg.Pool({ connectionString: options.url, max: 4 });
  const timed = timedPool(pool);
  const { schema } = options;
  const s = `"${schema}"`;
  await pool.query(`SELECT 1 FROM ${s}.reconcile_job LIMIT 1`);
  const { rows: jobs } = await pool.query(`SELECT max(id) AS id FROM ${s}.reconcile_job WHERE orca_archive_location = $1`, [BUCKET]);
  const jobId = Number(jobs[0].id);
  const { createProgressTables } = await import('../src/index.js');
  await createProgressTables(pool, { schema });
  await pool.query(`VACUUM ANALYZE ${s}.files`);
  await pool.query(`VACUUM ANALYZE ${s}.reconcile_s3_object`);
  const tempBytes = async () =>
    Number((await pool.query('SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()')).rows[0].temp_bytes);

  const variants: Variant[] = [
    { name: 'single statement', concurrency: 1 },
    { name: 'pieces, 1 worker', pieces: 'auto', concurrency: 1 },
    { name: 'pieces, 2 workers', pieces: 'auto', concurrency: 2 },
  ];
  // 'auto' keeps the single statement below its threshold: force the count it would choose above it.
  const forced = Math.max(1, Math.ceil(options.files / FILES_PER_PIECE));
  const results = new Map<string, Sample[]>();
  const digests = new Map<string, string>();
  for (let round = 1; round <= options.runs; round += 1) {
    for (const variant of variants) {
      let largest = 0;
      let pieces = 0;
      let peakRss = process.memoryUsage().rss;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
      const logger = {
        warn: (message: string) => console.warn(message),
        info: (message: string, fields?: Record<string, unknown>) => {
          if (message !== 'piece finished') return;
          largest = Math.max(largest, Number(fields?.['durationMs']));
          pieces += 1;
        },
      };
      const before = await tempBytes();
      timed.reset();
      const started = performance.now();
      let planned = 0;
      let lastPiece = 0;
      const onProgress = (progress: { piecesDone: number }) => {
        if (planned === 0) planned = performance.now();
        if (progress.piecesDone > 0) lastPiece = performance.now();
      };
      await generateReports(timed.pool, { jobId, orcaArchiveLocation: BUCKET }, {
        schema,
        logger,
        ...(variant.pieces === undefined ? {} : { pieces: forced, concurrency: variant.concurrency, onProgress }),
      });
      const ended = performance.now();
      const elapsedMs = ended - started;
      clearInterval(sampler);
      const sample: Sample = {
        planMs: planned ? planned - started : 0,
        piecesMs: planned ? lastPiece - planned : 0,
        finishMs: planned ? ended - lastPiece : 0,
        elapsedMs,
        databaseMs: timed.busyMs(),
        largestPieceMs: variant.pieces === undefined ? elapsedMs : largest,
        tempBytes: (await tempBytes()) - before,
        peakRssBytes: peakRss,
        pieces: variant.pieces === undefined ? 1 : pieces,
      };
      const list = results.get(variant.name) ?? [];
      list.push(sample);
      results.set(variant.name, list);
      const { rows } = await pool.query(
        `SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM ${s}.reconcile_phantom_report t WHERE job_id = $1)
             || (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM ${s}.reconcile_orphan_report t WHERE job_id = $1)
             || (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM ${s}.reconcile_catalog_mismatch_report t WHERE job_id = $1) AS digest`,
        [jobId],
      );
      digests.set(variant.name, rows[0].digest);
      console.log(
        `round ${round}, ${variant.name}: elapsed ${sec(sample.elapsedMs)} (plan and copy ${sec(sample.planMs)}, pieces ${sec(sample.piecesMs)}, finish ${sec(sample.finishMs)}), database ${sec(sample.databaseMs)}, largest piece ${sec(sample.largestPieceMs)}, temp ${mb(sample.tempBytes)}, RSS ${mb(sample.peakRssBytes)}`,
      );
    }
  }
  const identical = new Set(digests.values()).size === 1;
  console.log(`reports identical across variants: ${identical}`);
  const settings = (await pool.query(
    `SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) AS s FROM pg_settings
     WHERE name IN ('work_mem', 'shared_buffers', 'max_parallel_workers_per_gather', 'server_version')`,
  )).rows[0].s as string;
  const major = Number((await pool.query("SELECT current_setting('server_version_num')::int / 10000 AS major")).rows[0].major);
  const buckets = Number(
    (await pool.query(
      `SELECT (EXISTS (SELECT 1 FROM ${s}.files WHERE orca_archive_location = $1))::int
            + (EXISTS (SELECT 1 FROM ${s}.files WHERE orca_archive_location = $2))::int AS n`,
      [BUCKET, OTHER_BUCKET],
    )).rows[0].n,
  );
  const section = render(options, results, forced, identical, settings, major, buckets);
  console.log(section);
  if (options.writeDocs) writeDocSection(`bench:pieces:${options.files}:pg${major}`, section, '<!-- bench:pieces -->');
  await pool.end();
  if (!identical) process.exitCode = 1;
}

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

/** The median of a variant's rounds, leaving out the first (cache warm-up) when there are more. */
function medianOf(samples: Sample[], key: keyof Sample): number {
  const counted = samples.length > 1 ? samples.slice(1) : samples;
  return median(counted.map((sample) => sample[key]));
}

function render(
  options: PiecesBenchOptions,
  results: Map<string, Sample[]>,
  pieces: number,
  identical: boolean,
  settings: string,
  major: number,
  buckets: number,
): string {
  const rows = [...results.entries()].map(([name, samples]) => {
    const m = (key: keyof Sample) => medianOf(samples, key);
    const phases = name === 'single statement' ? '' : `${sec(m('planMs'))} / ${sec(m('piecesMs'))} / ${sec(m('finishMs'))}`;
    return `| ${name} | ${sec(m('elapsedMs'))} | ${phases} | ${sec(m('databaseMs'))} | ${sec(m('largestPieceMs'))} | ${mb(m('tempBytes'))} | ${mb(m('peakRssBytes'))} | ${(m('databaseMs') / (2 * options.files) * 1e6).toFixed(0)} ns |`;
  });
  const single = results.get('single statement')!;
  const one = results.get('pieces, 1 worker')!;
  const two = results.get('pieces, 2 workers')!;
  return [
    `### Pieced runs, ${options.files.toLocaleString('en-US')} files, PostgreSQL ${major}`,
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} with \`${options.command}\` on ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; ${settings}.`,
    `The bucket has ${options.files.toLocaleString('en-US')} catalog files and as many listing rows; the schema holds ${buckets} bucket${buckets === 1 ? '' : 's'}. ${options.runs} rounds of each variant in turn; medians${options.runs > 1 ? ' of the rounds after the first' : ''}. Pieces: ${pieces}, one per 250,000 files, as \`'auto'\` makes them above its threshold.`,
    '',
    '| variant | elapsed | plan and copy / pieces / finish | database time | largest piece | temp written | Node peak RSS | database time per file |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    `- 2 workers / 1 worker, elapsed: **${(medianOf(two, 'elapsedMs') / medianOf(one, 'elapsedMs')).toFixed(2)}x**; pieced (1 worker) / single, database time: **${(medianOf(one, 'databaseMs') / medianOf(single, 'databaseMs')).toFixed(2)}x**`,
    `- reports identical across the variants: ${identical ? 'yes' : '**NO**'}`,
  ].join('\n');
}
