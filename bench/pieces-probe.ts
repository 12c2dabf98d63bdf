// Probe for splitting one job's comparison into pieces: times the single report statement against
// one-pass hash partitioning of the bucket's catalog and listing into N unlogged tables followed
// by one join per piece, and prints temp bytes for each. It is a measurement tool, not the
// library's implementation: the piece joins count differences rather than write reports.
//
//   npx tsx bench/pieces-probe.ts [files] [pieces]
//   env: WORKERS=n (pieces joined at once, default 1), VACUUM=1 (VACUUM ANALYZE the pieces;
//        default: no statistics, with the hash join forced and work_mem set per piece),
//        SKIP_SINGLE=1 (do not time the single statement)
//
// It seeds (once) and keeps the schema orca_pieces_<files> in DATABASE_URL's database
// (default postgres://postgres@127.0.0.1:5432/test).
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { generateReports } from '../src/index.js';
import { BUCKET, seed } from './seed.js';

const files = Number(process.argv[2] ?? 1_000_000);
const pieces = Number(process.argv[3] ?? 8);
const workers = Number(process.env['WORKERS'] ?? 1);
const vacuum = process.env['VACUUM'] === '1';
const schema = `orca_pieces_${files}`;
const s = `"${schema}"`;
const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test', max: workers + 2 });

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}
async function tempBytes(): Promise<number> {
  const { rows } = await pool.query<{ temp_bytes: string }>('SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()');
  return Number(rows[0]!.temp_bytes);
}
async function measure(label: string, work: () => Promise<unknown>): Promise<number> {
  const before = await tempBytes();
  const ms = await timed(work);
  console.log(`${label}: ${seconds(ms)}, temp ${Math.round(((await tempBytes()) - before) / 1e6)} MB`);
  return ms;
}

const seeded = (await pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rows.length > 0;
const rate = 0.005;
const jobId = seeded
  ? Number((await pool.query(`SELECT max(id) AS id FROM ${s}.reconcile_job WHERE orca_archive_location = $1`, [BUCKET])).rows[0].id)
  : (await seed(pool, schema, files, { phantom: rate, orphan: rate, etag: rate, size: rate, storageClass: rate })).jobId;
await pool.query(`VACUUM ANALYZE ${s}.files`);
await pool.query(`VACUUM ANALYZE ${s}.reconcile_s3_object`);

if (process.env['SKIP_SINGLE'] !== '1') {
  for (let run = 1; run <= 2; run += 1) {
    await measure(`single statement, run ${run}`, () => generateReports(pool, { jobId, orcaArchiveLocation: BUCKET }, { schema }));
  }
}

await pool.query(`DROP TABLE IF EXISTS ${s}.piece_catalog, ${s}.piece_listing`);
await pool.query(`CREATE UNLOGGED TABLE ${s}.piece_catalog (piece int, granule_id int8, name text, key_path text,
  cumulus_archive_location text, etag text, size_in_bytes int8, storage_class_id int2) PARTITION BY LIST (piece)`);
await pool.query(`CREATE UNLOGGED TABLE ${s}.piece_listing (piece int, job_id int8, key_path text, etag text,
  last_update timestamptz, size_in_bytes int8, storage_class text) PARTITION BY LIST (piece)`);
for (let piece = 0; piece < pieces; piece += 1) {
  await pool.query(`CREATE UNLOGGED TABLE ${s}.piece_catalog_${piece} PARTITION OF ${s}.piece_catalog FOR VALUES IN (${piece})`);
  await pool.query(`CREATE UNLOGGED TABLE ${s}.piece_listing_${piece} PARTITION OF ${s}.piece_listing FOR VALUES IN (${piece})`);
}
const pieceOf = `(abs(hashtext(key_path)) % ${pieces})`;
const copyMs = await measure(`copy into ${pieces} pieces (catalog and listing side by side)`, () =>
  Promise.all([
    pool.query(`INSERT INTO ${s}.piece_catalog SELECT ${pieceOf}, granule_id, name, key_path, cumulus_archive_location, etag,
      size_in_bytes, storage_class_id FROM ${s}.files WHERE orca_archive_location = $1`, [BUCKET]),
    pool.query(`INSERT INTO ${s}.piece_listing SELECT ${pieceOf}, job_id, key_path, etag, last_update, size_in_bytes,
      storage_class FROM ${s}.reconcile_s3_object WHERE orca_archive_location = $1`, [BUCKET]),
  ]),
);
const vacuumMs = vacuum
  ? await measure('VACUUM ANALYZE of the pieces', async () => {
      await pool.query(`VACUUM ANALYZE ${s}.piece_catalog`);
      await pool.query(`VACUUM ANALYZE ${s}.piece_listing`);
    })
  : 0;

let next = 0;
let largest = 0;
let total = 0;
const joinMs = await measure(`join ${pieces} pieces with ${workers} worker(s)`, () =>
  Promise.all(
    Array.from({ length: workers }, async () => {
      for (let piece = next++; piece < pieces; piece = next++) {
        const client = await pool.connect();
        const ms = await timed(async () => {
          await client.query('BEGIN');
          if (!vacuum) await client.query("SET LOCAL work_mem = '64MB'; SET LOCAL enable_mergejoin = off; SET LOCAL enable_nestloop = off");
          await client.query(`SELECT count(*) FROM ${s}.piece_catalog_${piece} c FULL JOIN ${s}.piece_listing_${piece} i ON i.key_path = c.key_path
            WHERE c.key_path IS NULL OR i.key_path IS NULL OR c.etag <> i.etag OR c.size_in_bytes <> i.size_in_bytes`);
          await client.query('COMMIT');
        });
        client.release();
        largest = Math.max(largest, ms);
        total += ms;
      }
    }),
  ),
);
console.log(`pieces: database time ${seconds(total)}, largest piece ${seconds(largest)}`);
console.log(`pieced total: elapsed ${seconds(copyMs + vacuumMs + joinMs)}, database time ${seconds(copyMs + vacuumMs + total)}`);
await pool.end();
