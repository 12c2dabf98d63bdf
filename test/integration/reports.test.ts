import { describe, expect, it } from 'vitest';
import { DatabaseError, InvalidInputError, generateReports } from '../../src/index.js';
import { useOrcaSchema } from '../helpers/database.js';
import { insertFile, insertGranule, insertInventory, insertJob, readReports } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
const OTHER = 'prefix-orca-secondary';

describe('generateReports', () => {
  const { database: t, schema } = useOrcaSchema({ buckets: [BUCKET, OTHER], emptyTablesBeforeEach: true });

  it('writes one phantom, one orphan and each kind of mismatch with the columns the spec names', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET);
    const granule = await insertGranule(t, schema, {
      collectionId: 'MOD09GQ___061',
      granuleId: 'G-1',
      lastUpdate: '2025-03-04T05:06:07Z',
    });
    await insertFile(t, schema, { granuleId: granule, bucket: BUCKET, keyPath: 'a/only-in-catalog.h5', etag: '"p"', size: 7, storageClassId: 2 });
    await insertFile(t, schema, { granuleId: granule, bucket: BUCKET, keyPath: 'a/same.h5' });
    await insertFile(t, schema, { granuleId: granule, bucket: BUCKET, keyPath: 'a/etag.h5', etag: '"x"' });
    await insertFile(t, schema, { granuleId: granule, bucket: BUCKET, keyPath: 'a/all.h5', etag: '"x"', size: 1, storageClassId: 1 });
    await insertInventory(t, schema, { jobId, bucket: BUCKET, keyPath: 'a/same.h5' });
    await insertInventory(t, schema, { jobId, bucket: BUCKET, keyPath: 'a/etag.h5', etag: '"y"' });
    await insertInventory(t, schema, {
      jobId,
      bucket: BUCKET,
      keyPath: 'a/all.h5',
      etag: '"y"',
      size: 2,
      storageClass: 'DEEP_ARCHIVE',
      lastUpdate: '2026-02-03T04:05:06Z',
    });
    await insertInventory(t, schema, {
      jobId,
      bucket: BUCKET,
      keyPath: 'b/only-in-s3.h5',
      etag: '"o"',
      size: 9,
      storageClass: 'STANDARD',
      lastUpdate: '2026-02-03T04:05:06Z',
    });

    // Act
    const counts = await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema });

    // Assess
    expect(counts).toEqual({ phantoms: 1, orphans: 1, mismatches: 2 });
    const reports = await readReports(t, schema, jobId);
    expect(reports.phantoms).toEqual([
      {
        collection_id: 'MOD09GQ___061',
        granule_id: 'G-1',
        filename: 'only-in-catalog.h5',
        key_path: 'a/only-in-catalog.h5',
        orca_etag: '"p"',
        orca_last_update: expect.stringMatching(/^2025-03-04T0\d:06:07/),
        orca_size: 7,
        orca_storage_class_id: 2,
      },
    ]);
    expect(reports.orphans).toEqual([
      {
        key_path: 'b/only-in-s3.h5',
        etag: '"o"',
        last_update: expect.stringMatching(/^2026-02-03T0\d:05:06/),
        size_in_bytes: 9,
        storage_class: 'STANDARD',
      },
    ]);
    expect(reports.mismatches.map((row) => [row['key_path'], row['discrepancy_type']])).toEqual([
      ['a/all.h5', 'etag, size_in_bytes, storage_class'],
      ['a/etag.h5', 'etag'],
    ]);
    expect(reports.mismatches[0]).toMatchObject({
      collection_id: 'MOD09GQ___061',
      granule_id: 'G-1',
      filename: 'all.h5',
      cumulus_archive_location: `cumulus-${BUCKET}`,
      orca_etag: '"x"',
      s3_etag: '"y"',
      orca_size_in_bytes: 1,
      s3_size_in_bytes: 2,
      orca_storage_class_id: 1,
      s3_storage_class: 'DEEP_ARCHIVE',
    });
  });

  it('never reads another bucket’s catalog or inventory rows', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET);
    const otherJob = await insertJob(t, schema, OTHER);
    const granule = await insertGranule(t, schema, { collectionId: 'C', granuleId: 'G' });
    await insertFile(t, schema, { granuleId: granule, bucket: OTHER, keyPath: 'k' });
    await insertInventory(t, schema, { jobId: otherJob, bucket: OTHER, keyPath: 'j' });

    // Act
    const counts = await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema });

    // Assess
    expect(counts).toEqual({ phantoms: 0, orphans: 0, mismatches: 0 });
  });

  it('compares keys and values exactly: case, trailing spaces and unicode forms differ', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET);
    const granule = await insertGranule(t, schema, { collectionId: 'C', granuleId: 'G' });
    await insertFile(t, schema, { granuleId: granule, bucket: BUCKET, keyPath: 'Caf\u00e9/A.txt', etag: '"Ab"' });
    await insertInventory(t, schema, { jobId, bucket: BUCKET, keyPath: 'Cafe\u0301/A.txt', etag: '"Ab"' });
    await insertFile(t, schema, { granuleId: granule, bucket: BUCKET, keyPath: 'x', etag: '"Ab"' });
    await insertInventory(t, schema, { jobId, bucket: BUCKET, keyPath: 'x', etag: '"aB"' });

    // Act
    const counts = await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema });

    // Assess
    expect(counts).toEqual({ phantoms: 1, orphans: 1, mismatches: 1 });
  });

  it('rejects a bad job id or schema name with a typed error before touching the database', async () => {
    await expect(generateReports(t.db, { jobId: 0, orcaArchiveLocation: BUCKET }, { schema })).rejects.toMatchObject({
      name: 'InvalidInputError',
      field: 'jobId',
    });
    await expect(
      generateReports(t.db, { jobId: 1, orcaArchiveLocation: BUCKET }, { schema: 'orca"; DROP SCHEMA orca; --' }),
    ).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('rolls back every report when one insert fails', async () => {
    // Prepare: a constraint of the test schema rejects the orphan row, after the phantom row of the
    // same statement was written.
    const jobId = await insertJob(t, schema, BUCKET);
    const granule = await insertGranule(t, schema, { collectionId: 'C', granuleId: 'G' });
    await insertFile(t, schema, { granuleId: granule, bucket: BUCKET, keyPath: 'phantom' });
    await insertInventory(t, schema, { jobId, bucket: BUCKET, keyPath: 'orphan' });
    await t.exec(`ALTER TABLE "${schema}".reconcile_orphan_report ADD CONSTRAINT no_orphans CHECK (key_path <> 'orphan')`);

    try {
      // Act
      const failure = generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema });

      // Assess
      await expect(failure).rejects.toBeInstanceOf(DatabaseError);
      await expect(failure).rejects.toMatchObject({ sqlState: '23514' });
      const [row] = await t.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM "${schema}".reconcile_phantom_report) + (SELECT count(*) FROM "${schema}".reconcile_orphan_report) AS n`,
      );
      expect(Number(row!.n)).toBe(0);
    } finally {
      await t.exec(`ALTER TABLE "${schema}".reconcile_orphan_report DROP CONSTRAINT no_orphans`);
    }
  });
});
