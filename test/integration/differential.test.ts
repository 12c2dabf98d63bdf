import { describe, expect, it } from 'vitest';
import { generateReports } from '../../src/index.js';
import { type TestDatabase, useOrcaSchema } from '../helpers/database.js';
import {
  BUCKETS,
  corpusCoverage,
  type ExpectedReports,
  generateDataset,
  NEAR_DUPLICATE_KEYS,
  TRICKY_KEYS,
} from '../helpers/datasets.js';
import { runReferenceReports } from '../helpers/reference-reports.js';
import { readReports, type StoredReports } from '../helpers/rows.js';
import { REPORT_TABLES, asMultisets, loadDataset } from '../helpers/load-dataset.js';

const FIRST_SEED = 1;
const DATASETS = Array.from({ length: 240 }, (_, index) => generateDataset(FIRST_SEED + index));

/** The identifying part of each report row, in the form the dataset's expectations take. */
function summarise(reports: StoredReports): ExpectedReports {
  const key = (row: Record<string, unknown>) => String(row['key_path']);
  return {
    phantoms: reports.phantoms.map(key).sort(),
    orphans: reports.orphans.map(key).sort(),
    mismatches: reports.mismatches
      .map((row): [string, string] => [key(row), String(row['discrepancy_type'])])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  };
}

async function countAllReportRows(t: TestDatabase, s: string): Promise<number> {
  const [row] = await t.query<{ n: string | number }>(
    `SELECT ${REPORT_TABLES.map((table) => `(SELECT count(*) FROM ${s}.${table})`).join(' + ')} AS n`,
  );
  return Number(row!.n);
}

describe('generateReports agrees with a plain reading of the spec on generated datasets', () => {
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_differential', buckets: BUCKETS });
  const s = `"${schema}"`;

  it('the corpus covers every case the reports distinguish', () => {
    const coverage = corpusCoverage(DATASETS);
    const required = [
      'phantom',
      'orphan',
      'match',
      ...['etag', 'size_in_bytes', 'storage_class', 'etag, size_in_bytes', 'etag, storage_class',
        'size_in_bytes, storage_class', 'etag, size_in_bytes, storage_class'].map((type) => `mismatch: ${type}`),
      'empty catalog',
      'empty listing',
      'both empty',
      'all phantom',
      'all orphan',
      'no files in any bucket',
      'no inventory in any bucket',
      'same key, other fate in another bucket',
      'all near-duplicates in one bucket',
      ...['GLACIER', 'DEEP_ARCHIVE', 'STANDARD', 'glacier'].map((value) => `inventory class ${value}`),
      ...[...NEAR_DUPLICATE_KEYS, ...TRICKY_KEYS].map((key) => `reported key ${JSON.stringify(key)}`),
    ];
    const missing = required.filter((name) => !coverage.has(name));
    expect(missing).toEqual([]);
  });

  it.each(DATASETS.map((dataset) => [dataset.seed, dataset] as const))(
    'seed %i: the same rows as the reference for every bucket as target',
    async (seed, dataset) => {
      for (const bucket of dataset.buckets) {
        const where = `seed ${seed}, target ${bucket} (${dataset.modes[bucket]}), buckets ${dataset.buckets.join(' ')}`;

        // Prepare
        const jobs = await loadDataset(t, s, dataset);
        const jobId = jobs.get(bucket)!;

        // Act
        const counts = await generateReports(t.db, { jobId, orcaArchiveLocation: bucket }, { schema });
        const actual = await readReports(t, schema, jobId);
        const written = await countAllReportRows(t, s);
        for (const table of REPORT_TABLES) await t.query(`DELETE FROM ${s}.${table} WHERE job_id = $1`, [jobId]);
        const referenceCounts = await runReferenceReports(t.db, s, jobId, bucket);
        const reference = await readReports(t, schema, jobId);

        // Assess
        expect(asMultisets(actual), where).toEqual(asMultisets(reference));
        const sizes = { phantoms: actual.phantoms.length, orphans: actual.orphans.length, mismatches: actual.mismatches.length };
        expect(counts, where).toEqual(sizes);
        expect(written, `${where}: rows written under another job id`).toBe(sizes.phantoms + sizes.orphans + sizes.mismatches);
        // The oracle itself is checked against the fates the generator chose.
        expect(referenceCounts, where).toEqual({
          phantoms: reference.phantoms.length,
          orphans: reference.orphans.length,
          mismatches: reference.mismatches.length,
        });
        expect(summarise(reference), where).toEqual(dataset.expected[bucket]);
      }
    },
  );
});
