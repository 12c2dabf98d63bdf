import { describe, expect, it } from 'vitest';
import { generateReports } from '../../src/index.js';
import { usingPostgres, useOrcaSchema } from '../helpers/database.js';
import { BUCKETS, generateDataset } from '../helpers/datasets.js';
import { REPORT_TABLES, asMultisets, loadDataset } from '../helpers/load-dataset.js';
import { insertInventory, insertJob, readReports } from '../helpers/rows.js';

const BUCKET = 'lp-daac-orca-primary';

describe('pieced runs write exactly the single statement’s reports', () => {
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_pieces_diff', buckets: BUCKETS });
  const s = `"${schema}"`;
  const PIECES = [1, 2, 3, 5, 16, 32];
  const DATASETS = Array.from({ length: 30 }, (_, index) => generateDataset(1 + index * 7));

  it.each(DATASETS.map((dataset, index) => [dataset.seed, PIECES[index % PIECES.length]!, dataset] as const))(
    'seed %i in %i pieces: every row and column equal for every bucket as target',
    async (seed, pieces, dataset) => {
      for (const bucket of dataset.buckets) {
        const where = `seed ${seed}, ${pieces} pieces, target ${bucket} (${dataset.modes[bucket]})`;
        const jobs = await loadDataset(t, s, dataset);
        const jobId = jobs.get(bucket)!;

        const singleCounts = await generateReports(t.db, { jobId, orcaArchiveLocation: bucket }, { schema });
        const single = await readReports(t, schema, jobId);
        for (const table of REPORT_TABLES) await t.query(`DELETE FROM ${s}.${table} WHERE job_id = $1`, [jobId]);
        const piecedCounts = await generateReports(t.db, { jobId, orcaArchiveLocation: bucket }, { schema, pieces, concurrency: 2 });
        const pieced = await readReports(t, schema, jobId);

        expect(asMultisets(pieced), where).toEqual(asMultisets(single));
        expect(piecedCounts, where).toEqual(singleCounts);
        const [run] = await t.query<{ pieces: number; done: number }>(
          `SELECT r.pieces, (SELECT count(*) FROM ${s}.orca_reconcile_piece p WHERE p.run_id = r.id)::int AS done
           FROM ${s}.orca_reconcile_run r WHERE r.job_id = $1 AND r.finished_at IS NOT NULL`,
          [jobId],
        );
        expect(run, where).toEqual({ pieces, done: pieces });
      }
    },
  );

  it('keys in the first and the last piece, and pieces left empty, give the same reports', async () => {
    await t.exec(`DELETE FROM ${s}.reconcile_s3_object; DELETE FROM ${s}.files;`);
    const jobId = await insertJob(t, schema, BUCKET);
    // The piece of a key is (hashtext(key) + 2^31) mod N + 1: choose keys the server puts in
    // piece 1 and piece N of 7, and one whose hash is the lowest of its candidates.
    const candidates = Array.from({ length: 400 }, (_, index) => `edge/${index}.h5`);
    const placed = await t.query<{ key: string; piece: number; hash: number }>(
      `SELECT key, ((hashtext(key)::int8 + 2147483648) % 7 + 1)::int AS piece, hashtext(key) AS hash FROM unnest($1::text[]) key`,
      [candidates],
    );
    // 10 keys in 64 pieces leave most pieces empty.
    const first = placed.filter((row) => row.piece === 1).slice(0, 3);
    const last = placed.filter((row) => row.piece === 7).slice(0, 3);
    const lowest = [...placed].sort((a, b) => a.hash - b.hash)[0]!;
    const highest = [...placed].sort((a, b) => b.hash - a.hash)[0]!;
    const keys = [...new Set([...first, ...last, lowest, highest].map((row) => row.key))];
    expect(first.length + last.length).toBe(6);
    await t.query(`INSERT INTO ${s}.providers VALUES ('prov', 'P') ON CONFLICT DO NOTHING`);
    await t.query(`INSERT INTO ${s}.collections VALUES ('C___1', 'C', '1') ON CONFLICT DO NOTHING`);
    const [granule] = await t.query<{ id: string }>(
      `INSERT INTO ${s}.granules (provider_id, collection_id, cumulus_granule_id, execution_id, ingest_time, cumulus_create_time, last_update)
       VALUES ('prov', 'C___1', 'G-edge', 'e', '2025-01-01Z', '2025-01-01Z', '2025-01-01Z') RETURNING id`,
    );
    // Alternate fates: phantom, orphan, mismatch, match.
    for (const [index, key] of keys.entries()) {
      const fate = index % 4;
      if (fate !== 1) {
        await t.query(
          `INSERT INTO ${s}.files (granule_id, name, orca_archive_location, cumulus_archive_location, key_path, ingest_time, etag, version, size_in_bytes, storage_class_id)
           VALUES ($1, 'f', $2, 'c', $3, '2025-01-01Z', '"a"', 'v1', 1, 1)`,
          [granule!.id, BUCKET, key],
        );
      }
      if (fate !== 0) await insertInventory(t, schema, { jobId, bucket: BUCKET, keyPath: key, etag: fate === 2 ? '"b"' : '"a"', size: 1 });
    }

    const single = await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema });
    const singleRows = asMultisets(await readReports(t, schema, jobId));
    for (const pieces of usingPostgres ? [7, 1, 64, 1024] : [7, 1, 64]) {
      const counts = await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema, pieces });
      expect(counts, `${pieces} pieces`).toEqual(single);
      expect(asMultisets(await readReports(t, schema, jobId)), `${pieces} pieces`).toEqual(singleRows);
    }
    expect(single.phantoms + single.orphans + single.mismatches).toBeGreaterThanOrEqual(5);
  });
});
