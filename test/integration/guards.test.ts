import { beforeAll, describe, expect, it } from 'vitest';
import {
  InventoryNotLoadedError,
  JobNotFoundError,
  LocationMismatchError,
  OrcaStatus,
  StaleInventoryError,
  SupersededJobError,
  generateReports,
  isRefusal,
  task,
} from '../../src/index.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import {
  holdAdvisoryLock,
  installReportGate,
  noWait,
  reportGateKey,
  spreadJobIds,
  track,
  waitForLockWaiters,
} from '../helpers/faults.js';
import {
  insertJob,
  installStatusTrail,
  readJob,
  readReports,
  readStatusTrail,
  seedOneOfEachReport,
  snapshotReconcileTables,
} from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
const OTHER_BUCKET = 'prefix-orca-secondary';

describe('the checks a run makes before it writes', () => {
  const { database: t, schema, sqs } = useOrcaSchema({
    prefix: 'orca_guards',
    buckets: [BUCKET, OTHER_BUCKET],
    sqs: true,
    emptyTablesBeforeEach: true,
  });

  beforeAll(async () => {
    await installStatusTrail(t, schema);
    await spreadJobIds(t, schema);
    if (usingPostgres) await installReportGate(t, schema);
  });

  /** Job and report rows that belong to the other bucket, as text: no run on BUCKET may touch them. */
  const otherBucketRows = async (): Promise<string[]> =>
    (
      await t.query<{ row: string }>(
        `SELECT row FROM (
         SELECT to_jsonb(j)::text AS row FROM "${schema}".reconcile_job j WHERE orca_archive_location = $1
         UNION ALL
         SELECT to_jsonb(r)::text FROM "${schema}".reconcile_orphan_report r
           JOIN "${schema}".reconcile_job j ON j.id = r.job_id WHERE j.orca_archive_location = $1
         UNION ALL
         SELECT to_jsonb(r)::text FROM "${schema}".reconcile_phantom_report r
           JOIN "${schema}".reconcile_job j ON j.id = r.job_id WHERE j.orca_archive_location = $1
         UNION ALL
         SELECT to_jsonb(r)::text FROM "${schema}".reconcile_catalog_mismatch_report r
           JOIN "${schema}".reconcile_job j ON j.id = r.job_id WHERE j.orca_archive_location = $1
         ) AS all_rows ORDER BY row COLLATE "C"`,
        [OTHER_BUCKET],
      )
    ).map((r) => r.row);

  /** The other bucket's job with its own listing and reports. */
  const stageOtherBucket = async (): Promise<number> => {
    const otherJobId = await insertJob(t, schema, OTHER_BUCKET);
    await seedOneOfEachReport(t, schema, otherJobId, OTHER_BUCKET);
    await generateReports(t.db, { jobId: otherJobId, orcaArchiveLocation: OTHER_BUCKET }, { schema, retry: noWait });
    return otherJobId;
  };

  /**
   * BUCKET's job with its listing loaded, reports of an earlier run and one stray report row a
   * fresh run would remove; and the other bucket's job (see {@link stageOtherBucket}).
   */
  const stageBothBuckets = async () => {
    const jobId = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobId, BUCKET);
    await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema, retry: noWait });
    await t.query(
      `INSERT INTO "${schema}".reconcile_orphan_report (job_id, key_path, etag, last_update, size_in_bytes, storage_class)
       VALUES ($1, 'stray/from-an-earlier-run.h5', '"x"', '2025-01-01Z', 1, 'GLACIER')`,
      [jobId],
    );
    const otherJobId = await stageOtherBucket();
    return { jobId, otherJobId };
  };

  interface WrongMessage {
    jobId: number;
    orcaArchiveLocation: string;
    error: new (...args: never[]) => Error;
    fields: Record<string, unknown>;
    messageMentions: string[];
  }

  const wrongMessages: Array<[string, () => Promise<WrongMessage>]> = [
    [
      'JobNotFoundError for a job id no row has',
      async () => {
        const { jobId, otherJobId } = await stageBothBuckets();
        const missing = Math.max(jobId, otherJobId) + 1000;
        return {
          jobId: missing,
          orcaArchiveLocation: BUCKET,
          error: JobNotFoundError,
          fields: { code: 'JOB_NOT_FOUND', jobId: missing },
          messageMentions: [String(missing)],
        };
      },
    ],
    [
      'LocationMismatchError for a job of another bucket, naming both buckets',
      async () => {
        const { jobId } = await stageBothBuckets();
        return {
          jobId,
          orcaArchiveLocation: OTHER_BUCKET,
          error: LocationMismatchError,
          fields: { code: 'LOCATION_MISMATCH', jobId, jobLocation: BUCKET, requestedLocation: OTHER_BUCKET },
          messageMentions: [String(jobId), BUCKET, OTHER_BUCKET],
        };
      },
    ],
    [
      'InventoryNotLoadedError for a job still getting its S3 list',
      async () => {
        await stageBothBuckets();
        const loading = await insertJob(t, schema, BUCKET, OrcaStatus.GettingS3List);
        await t.query(
          `INSERT INTO "${schema}".reconcile_orphan_report (job_id, key_path, etag, last_update, size_in_bytes, storage_class)
           VALUES ($1, 'stray/of-the-loading-job.h5', '"x"', '2025-01-01Z', 1, 'GLACIER')`,
          [loading],
        );
        return {
          jobId: loading,
          orcaArchiveLocation: BUCKET,
          error: InventoryNotLoadedError,
          fields: { code: 'INVENTORY_NOT_LOADED', jobId: loading },
          messageMentions: [String(loading)],
        };
      },
    ],
  ];

  describe.each(wrongMessages)('%s', (_label, prepare) => {
    it('through task: changes no row and leaves the message in the queue', async () => {
      // Prepare
      const wrong = await prepare();
      const queue = await sqs.createQueue({ fifo: true });
      const message = await queue.sendAndReceiveJob({ jobId: wrong.jobId, orcaArchiveLocation: wrong.orcaArchiveLocation });
      const before = await snapshotReconcileTables(t, schema);

      // Act
      const error = await task(
        {
          jobId: wrong.jobId,
          orcaArchiveLocation: wrong.orcaArchiveLocation,
          queueUrl: queue.url,
          messageReceiptHandle: message.receiptHandle,
        },
        { database: t.db, sqs: sqs.sqs, schema, retry: noWait },
      ).catch((thrown: unknown) => thrown);

      // Assess
      expect(error).toBeInstanceOf(wrong.error);
      expect(error).toMatchObject(wrong.fields);
      for (const text of wrong.messageMentions) expect((error as Error).message).toContain(text);
      expect(await snapshotReconcileTables(t, schema)).toEqual(before);
      expect(await queue.messagesLeft()).toBe(1);
    });

    it('through generateReports: changes no row', async () => {
      // Prepare
      const wrong = await prepare();
      const before = await snapshotReconcileTables(t, schema);

      // Act
      const error = await generateReports(
        t.db,
        { jobId: wrong.jobId, orcaArchiveLocation: wrong.orcaArchiveLocation },
        { schema, retry: noWait },
      ).catch((thrown: unknown) => thrown);

      // Assess
      expect(error).toBeInstanceOf(wrong.error);
      expect(error).toMatchObject(wrong.fields);
      expect(await snapshotReconcileTables(t, schema)).toEqual(before);
    });
  });

  const noReports = { phantoms: [], orphans: [], mismatches: [] };

  const firstPartitionRowJob = async (): Promise<number> => {
    const [row] = await t.query<{ job_id: string | number }>(
      `SELECT job_id FROM "${schema}".reconcile_s3_object WHERE orca_archive_location = $1 LIMIT 1`,
      [BUCKET],
    );
    return Number(row!.job_id);
  };

  /**
   * Runs `jobId` through task and through generateReports, and checks that each was refused
   * with `expected` and changed no row at all: no status, no report, the message kept.
   */
  const expectRefusedUntouched = async (jobId: number, expected: { error: new (...args: never[]) => Error; fields: Record<string, unknown> }) => {
    const queue = await sqs.createQueue({ fifo: true });
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
    const before = await snapshotReconcileTables(t, schema);
    const trailBefore = await readStatusTrail(t, schema, jobId);

    const viaTask = await task(
      { jobId, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle },
      { database: t.db, sqs: sqs.sqs, schema, retry: noWait },
    ).catch((thrown: unknown) => thrown);
    const viaGenerate = await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema, retry: noWait }).catch(
      (thrown: unknown) => thrown,
    );

    for (const error of [viaTask, viaGenerate]) {
      expect(error).toBeInstanceOf(expected.error);
      expect(error).toMatchObject(expected.fields);
      expect(isRefusal(error)).toBe(true);
    }
    expect(await snapshotReconcileTables(t, schema)).toEqual(before);
    expect(await readStatusTrail(t, schema, jobId)).toEqual(trailBefore);
    expect(await readReports(t, schema, jobId)).toEqual(noReports);
    expect(await queue.messagesLeft()).toBe(1);
  };

  describe('SupersededJobError: a newer job exists for the bucket', () => {
    it('refuses a job whose partition a newer job has emptied and not reloaded yet, writing nothing', async () => {
      // Prepare: the loader made job `newer` (getting its S3 list) and truncated the partition.
      await stageOtherBucket();
      const older = await insertJob(t, schema, BUCKET);
      await seedOneOfEachReport(t, schema, older, BUCKET);
      const newer = await insertJob(t, schema, BUCKET, OrcaStatus.GettingS3List);
      await t.query(`DELETE FROM "${schema}".reconcile_s3_object WHERE orca_archive_location = $1`, [BUCKET]);

      // Act / Assess
      await expectRefusedUntouched(older, {
        error: SupersededJobError,
        fields: { code: 'JOB_SUPERSEDED', jobId: older, newerJobId: newer, orcaArchiveLocation: BUCKET },
      });
      expect((await readJob(t, schema, older)).status_id).toBe(OrcaStatus.Staged);
    });

    describe.each([
      ['a partition reloaded by the newer job', false],
      ['a partition that mixes both jobs’ rows, the older job’s first', true],
    ] as const)('%s', (_label, mixed) => {
      it('refuses the older job, writing nothing', async () => {
        // Prepare
        await stageOtherBucket();
        const older = await insertJob(t, schema, BUCKET);
        await seedOneOfEachReport(t, schema, older, BUCKET);
        const newer = await insertJob(t, schema, BUCKET, OrcaStatus.GettingS3List);
        if (!mixed) await t.query(`DELETE FROM "${schema}".reconcile_s3_object WHERE orca_archive_location = $1`, [BUCKET]);
        await seedOneOfEachReport(t, schema, newer, BUCKET);
        await t.query(`UPDATE "${schema}".reconcile_job SET status_id = $2 WHERE id = $1`, [newer, OrcaStatus.Staged]);
        expect(await firstPartitionRowJob()).toBe(mixed ? older : newer);

        // Act / Assess
        await expectRefusedUntouched(older, {
          error: SupersededJobError,
          fields: { code: 'JOB_SUPERSEDED', jobId: older, newerJobId: newer, orcaArchiveLocation: BUCKET },
        });
      });
    });

    it('still returns the stored counts of a job that finished before it was superseded', async () => {
      // Prepare
      const older = await insertJob(t, schema, BUCKET);
      await seedOneOfEachReport(t, schema, older, BUCKET);
      const first = await task({ jobId: older, orcaArchiveLocation: BUCKET }, { database: t.db, schema, retry: noWait });
      await insertJob(t, schema, BUCKET, OrcaStatus.GettingS3List);

      // Act
      const again = await task({ jobId: older, orcaArchiveLocation: BUCKET }, { database: t.db, schema, retry: noWait });

      // Assess
      expect(again).toEqual(first);
      expect((await readJob(t, schema, older)).status_id).toBe(OrcaStatus.Success);
    });

    it.runIf(usingPostgres)(
      'rolls the reports back and marks the job error when a newer job commits while the report statement runs',
      async () => {
        // Prepare: the report statement stops at the gate, after its rows are written.
        const older = await insertJob(t, schema, BUCKET);
        await seedOneOfEachReport(t, schema, older, BUCKET);
        const queue = await sqs.createQueue({ fifo: true });
        const message = await queue.sendAndReceiveJob({ jobId: older, orcaArchiveLocation: BUCKET });
        const gate = await holdAdvisoryLock(reportGateKey(older));
        try {
          const run = track(
            task(
              { jobId: older, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle },
              { database: t.db, sqs: sqs.sqs, schema, retry: noWait },
            ).catch((thrown: unknown) => thrown),
          );
          await waitForLockWaiters(t, reportGateKey(older), 1);

          // Act: the loader makes the next job of the bucket meanwhile.
          const newer = await insertJob(t, schema, BUCKET, OrcaStatus.GettingS3List);
          await gate.release();
          const error = await run.promise;

          // Assess
          expect(error).toBeInstanceOf(SupersededJobError);
          expect(error).toMatchObject({ jobId: older, newerJobId: newer });
          const job = await readJob(t, schema, older);
          expect(job.status_id).toBe(OrcaStatus.Error);
          expect(job.error_message).toBe((error as Error).message);
          expect((await readStatusTrail(t, schema, older)).map((entry) => entry.status_id)).toEqual([
            OrcaStatus.GeneratingReports,
            OrcaStatus.Error,
          ]);
          expect(await readReports(t, schema, older)).toEqual(noReports);
          expect(await queue.messagesLeft()).toBe(1);
        } finally {
          await gate.release();
        }
      },
    );
  });

  describe('StaleInventoryError: the partition does not hold this job’s listing', () => {
    it('refuses the newest job when the partition still holds an older job’s listing, writing nothing', async () => {
      // Prepare: job `older` loaded; job `jobId` staged without its listing ever arriving.
      await stageOtherBucket();
      const older = await insertJob(t, schema, BUCKET);
      await seedOneOfEachReport(t, schema, older, BUCKET);
      const jobId = await insertJob(t, schema, BUCKET);

      // Act / Assess
      await expectRefusedUntouched(jobId, {
        error: StaleInventoryError,
        fields: { code: 'STALE_INVENTORY', jobId, inventoryJobId: older, orcaArchiveLocation: BUCKET },
      });
    });

    describe('a partition whose first rows are this job’s, with an older job’s rows after them', () => {
      const stageMixed = async () => {
        const otherJobId = await stageOtherBucket();
        const older = await insertJob(t, schema, BUCKET);
        const jobId = await insertJob(t, schema, BUCKET);
        await seedOneOfEachReport(t, schema, jobId, BUCKET);
        await seedOneOfEachReport(t, schema, older, BUCKET);
        expect(await firstPartitionRowJob()).toBe(jobId);
        return { older, jobId, otherJobId };
      };

      it('through task: marks the job error with the message, writes no report and keeps the message', async () => {
        // Prepare
        const { older, jobId, otherJobId } = await stageMixed();
        const queue = await sqs.createQueue({ fifo: true });
        const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
        const olderBefore = await readJob(t, schema, older);
        const otherBefore = await otherBucketRows();
        expect(otherBefore.length).toBeGreaterThan(0);

        // Act
        const error = await task(
          { jobId, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle },
          { database: t.db, sqs: sqs.sqs, schema, retry: noWait },
        ).catch((thrown: unknown) => thrown);

        // Assess
        expect(error).toBeInstanceOf(StaleInventoryError);
        expect(error).toMatchObject({ code: 'STALE_INVENTORY', jobId, inventoryJobId: older, orcaArchiveLocation: BUCKET });
        const job = await readJob(t, schema, jobId);
        expect(job.status_id).toBe(OrcaStatus.Error);
        expect(job.error_message).toBe((error as Error).message);
        expect(job.end_time).toBeInstanceOf(Date);
        expect((await readStatusTrail(t, schema, jobId)).map((entry) => entry.status_id)).toEqual([
          OrcaStatus.GeneratingReports,
          OrcaStatus.Error,
        ]);
        expect(await readReports(t, schema, jobId)).toEqual(noReports);
        expect(await readReports(t, schema, older)).toEqual(noReports);
        expect(await readJob(t, schema, older)).toEqual(olderBefore);
        expect(await otherBucketRows()).toEqual(otherBefore);
        expect(otherBefore.some((row) => row.includes(`"job_id": ${otherJobId}`))).toBe(true);
        expect(await queue.messagesLeft()).toBe(1);
      });

      it('through generateReports: throws and changes no row', async () => {
        // Prepare
        const { older, jobId } = await stageMixed();
        const before = await snapshotReconcileTables(t, schema);

        // Act
        const error = await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema, retry: noWait }).catch(
          (thrown: unknown) => thrown,
        );

        // Assess
        expect(error).toBeInstanceOf(StaleInventoryError);
        expect(error).toMatchObject({ jobId, inventoryJobId: older, orcaArchiveLocation: BUCKET });
        expect(await snapshotReconcileTables(t, schema)).toEqual(before);
      });
    });
  });

  it('reconciles an empty listing of the newest job as an empty bucket: every catalog file a phantom', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET);
    const keys = await seedOneOfEachReport(t, schema, jobId, BUCKET);
    await t.query(`DELETE FROM "${schema}".reconcile_s3_object WHERE orca_archive_location = $1`, [BUCKET]);

    // Act
    const output = await task({ jobId, orcaArchiveLocation: BUCKET }, { database: t.db, schema, retry: noWait });

    // Assess
    expect(output).toEqual({ jobId, phantoms: 3, orphans: 0, mismatches: 0 });
    const reports = await readReports(t, schema, jobId);
    expect(reports.phantoms.map((row) => row.key_path).sort()).toEqual([keys.match, keys.mismatch, keys.phantom].sort());
  });
});
