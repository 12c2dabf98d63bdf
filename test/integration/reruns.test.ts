import { beforeAll, describe, expect, it } from 'vitest';
import { OrcaStatus, generateReports, task } from '../../src/index.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { holdAdvisoryLock, installPausePoint, newPauseKey, noWait, spreadJobIds, track, waitForLockWaiters } from '../helpers/faults.js';
import { runReferenceReports } from '../helpers/reference-reports.js';
import {
  insertInventory,
  insertJob,
  installStatusTrail,
  readJob,
  readReports,
  readStatusTrail,
  type SeededKeys,
  seedOneOfEachReport,
} from '../helpers/rows.js';
import type { TestQueue } from '../helpers/sqs.js';

const BUCKET = 'prefix-orca-primary';

describe('running a job again', () => {
  const { database: t, schema, sqs } = useOrcaSchema({
    prefix: 'orca_reruns',
    buckets: [BUCKET],
    sqs: true,
    emptyTablesBeforeEach: true,
  });

  beforeAll(async () => {
    await installStatusTrail(t, schema);
    await spreadJobIds(t, schema);
  });

  const runTask = (jobId: number, queue: TestQueue, receiptHandle: string) =>
    task(
      { jobId, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: receiptHandle },
      { database: t.db, sqs: sqs.sqs, schema, retry: noWait },
    );

  const setStatus = async (jobId: number, status: OrcaStatus, errorMessage: string | null, endTime: string | null) => {
    await t.query(
      `UPDATE "${schema}".reconcile_job SET status_id = $2, error_message = $3, end_time = $4 WHERE id = $1`,
      [jobId, status, errorMessage, endTime],
    );
  };

  /**
   * Changes the listing of a job that already has reports, so that fresh reports differ from the
   * stored ones in every table: the old orphan and the old etag mismatch go away, a new orphan and
   * a size mismatch (on the key that used to match) appear; the phantom stays.
   */
  const changeListing = async (jobId: number, keys: SeededKeys) => {
    await t.query(`DELETE FROM "${schema}".reconcile_s3_object WHERE key_path = $1`, [keys.orphan]);
    await t.query(`UPDATE "${schema}".reconcile_s3_object SET etag = '"catalog"' WHERE key_path = $1`, [keys.mismatch]);
    await t.query(`UPDATE "${schema}".reconcile_s3_object SET size_in_bytes = 999 WHERE key_path = $1`, [keys.match]);
    const newOrphan = `job-${jobId}/new-orphan.h5`;
    await insertInventory(t, schema, { jobId, bucket: BUCKET, keyPath: newOrphan });
    return { newOrphan };
  };

  /** The reports the spec asks for on the current data, written by the reference statements under a job of their own. */
  const referenceReports = async () => {
    const referenceJob = await insertJob(t, schema, BUCKET, OrcaStatus.Success);
    await runReferenceReports(t.db, `"${schema}"`, referenceJob, BUCKET);
    return readReports(t, schema, referenceJob);
  };

  const keysOf = (rows: Record<string, unknown>[]) => rows.map((row) => row['key_path']);

  it('a redelivered message of a finished job regenerates nothing, returns the stored counts and deletes the message', async () => {
    // Prepare: the message's visibility lapses while the first run works, so SQS hands it out
    // again with a new receipt handle, and the first run's delete (old handle) removes nothing.
    const jobId = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobId, BUCKET);
    const queue = await sqs.createQueue();
    const firstDelivery = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
    await queue.makeVisible(firstDelivery.receiptHandle);
    const secondDelivery = await queue.receive();
    expect(secondDelivery).toMatchObject({ messageId: firstDelivery.messageId, receiveCount: 2 });

    const firstOutput = await runTask(jobId, queue, firstDelivery.receiptHandle);
    const reportsAfterFirst = await readReports(t, schema, jobId);
    const jobAfterFirst = await readJob(t, schema, jobId);
    const trailAfterFirst = await readStatusTrail(t, schema, jobId);
    expect(await queue.messagesLeft()).toBe(1);

    // Act
    const secondOutput = await runTask(jobId, queue, secondDelivery!.receiptHandle);

    // Assess
    expect(firstOutput).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    expect(secondOutput).toEqual(firstOutput);
    const reports = await readReports(t, schema, jobId);
    expect(reports).toEqual(reportsAfterFirst);
    expect([reports.phantoms.length, reports.orphans.length, reports.mismatches.length]).toEqual([1, 1, 1]);
    const job = await readJob(t, schema, jobId);
    expect(job).toEqual(jobAfterFirst);
    expect(job.status_id).toBe(OrcaStatus.Success);
    expect(job.end_time).toBeInstanceOf(Date);
    expect(trailAfterFirst.map((entry) => entry.status_id)).toEqual([OrcaStatus.GeneratingReports, OrcaStatus.Success]);
    expect(await readStatusTrail(t, schema, jobId)).toEqual(trailAfterFirst);
    expect(await queue.messagesLeft()).toBe(0);
  });

  it('a job in error with reports of an earlier run gets exactly the new set of reports', async () => {
    // Prepare: an earlier run wrote reports; then the listing changed, a stray row appeared in
    // the phantom report, and the job was marked error.
    const jobId = await insertJob(t, schema, BUCKET);
    const keys = await seedOneOfEachReport(t, schema, jobId, BUCKET);
    await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema, retry: noWait });
    await t.query(
      `INSERT INTO "${schema}".reconcile_phantom_report
         (job_id, collection_id, granule_id, filename, key_path, orca_etag, orca_last_update, orca_size, orca_storage_class_id)
       VALUES ($1, 'MOD09GQ___061', 'G-stale', 'stale.h5', 'stale/stale.h5', '"x"', '2025-01-01Z', 1, 1)`,
      [jobId],
    );
    const { newOrphan } = await changeListing(jobId, keys);
    await setStatus(jobId, OrcaStatus.Error, 'earlier failure', '2026-01-01T02:00:00Z');
    const old = await readReports(t, schema, jobId);
    expect([old.phantoms.length, old.orphans.length, old.mismatches.length]).toEqual([2, 1, 1]);
    const queue = await sqs.createQueue({ fifo: true });
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });

    // Act
    const output = await runTask(jobId, queue, message.receiptHandle);

    // Assess
    expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    const reports = await readReports(t, schema, jobId);
    expect(keysOf(reports.phantoms)).toEqual([keys.phantom]);
    expect(keysOf(reports.orphans)).toEqual([newOrphan]);
    expect(reports.mismatches.map((row) => [row['key_path'], row['discrepancy_type']])).toEqual([
      [keys.match, 'size_in_bytes'],
    ]);
    expect(reports).toEqual(await referenceReports());
    const job = await readJob(t, schema, jobId);
    expect(job).toMatchObject({ status_id: OrcaStatus.Success, error_message: null });
    expect(job.end_time).not.toEqual(new Date('2026-01-01T02:00:00Z'));
    // The first entry is the fixture's own update.
    expect((await readStatusTrail(t, schema, jobId)).slice(1).map((entry) => entry.status_id)).toEqual([
      OrcaStatus.GeneratingReports,
      OrcaStatus.Success,
    ]);
    expect(await queue.messagesLeft()).toBe(0);
  });

  it('a job left in generating reports by a crashed run completes on the next delivery', async () => {
    // Prepare: the crashed run committed `generating reports`, and nothing after it.
    const jobId = await insertJob(t, schema, BUCKET);
    const keys = await seedOneOfEachReport(t, schema, jobId, BUCKET);
    await t.query(
      `UPDATE "${schema}".reconcile_job SET status_id = $2, last_update = '2026-01-01T01:05:00Z', end_time = NULL WHERE id = $1`,
      [jobId, OrcaStatus.GeneratingReports],
    );
    const queue = await sqs.createQueue();
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });

    // Act
    const output = await runTask(jobId, queue, message.receiptHandle);

    // Assess
    expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    const reports = await readReports(t, schema, jobId);
    expect([keysOf(reports.phantoms), keysOf(reports.orphans), keysOf(reports.mismatches)]).toEqual([
      [keys.phantom],
      [keys.orphan],
      [keys.mismatch],
    ]);
    const job = await readJob(t, schema, jobId);
    expect(job).toMatchObject({ status_id: OrcaStatus.Success, error_message: null });
    expect(job.end_time).toBeInstanceOf(Date);
    expect(job.end_time).toEqual(job.last_update);
    expect((await readStatusTrail(t, schema, jobId)).slice(1).map((entry) => entry.status_id)).toEqual([
      OrcaStatus.GeneratingReports,
      OrcaStatus.Success,
    ]);
    expect(await queue.messagesLeft()).toBe(0);
  });

  it('generateReports called twice leaves exactly one set of reports and the job status alone', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobId, BUCKET);
    const jobBefore = await readJob(t, schema, jobId);

    // Act
    const first = await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema, retry: noWait });
    const afterFirst = await readReports(t, schema, jobId);
    const second = await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema, retry: noWait });

    // Assess
    expect(first).toEqual({ phantoms: 1, orphans: 1, mismatches: 1 });
    expect(second).toEqual(first);
    const reports = await readReports(t, schema, jobId);
    expect(reports).toEqual(afterFirst);
    expect([reports.phantoms.length, reports.orphans.length, reports.mismatches.length]).toEqual([1, 1, 1]);
    expect(reports).toEqual(await referenceReports());
    expect(await readJob(t, schema, jobId)).toEqual(jobBefore);
    expect(await readStatusTrail(t, schema, jobId)).toEqual([]);
  });

  it.runIf(usingPostgres)(
    'readers on another connection see the old set until the replacement commits, then the new set',
    async () => {
      // Prepare: a job in error with an old set of reports that the new listing changes.
      const jobId = await insertJob(t, schema, BUCKET);
      const keys = await seedOneOfEachReport(t, schema, jobId, BUCKET);
      await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema, retry: noWait });
      await changeListing(jobId, keys);
      await setStatus(jobId, OrcaStatus.Error, 'earlier failure', '2026-01-01T02:00:00Z');
      const old = await readReports(t, schema, jobId);
      const queue = await sqs.createQueue();
      const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
      // Two points inside the replacing transaction: after it deleted the old rows (the mismatch
      // report is the last it clears), and after it wrote the new ones and marked the job success.
      const afterDelete = newPauseKey();
      const beforeCommit = newPauseKey();
      const dropAfterDelete = await installPausePoint(
        t,
        schema,
        'after_delete',
        { table: 'reconcile_catalog_mismatch_report', event: 'DELETE' },
        afterDelete,
      );
      const dropBeforeCommit = await installPausePoint(
        t,
        schema,
        'before_commit',
        { table: 'reconcile_job', event: 'UPDATE', when: `NEW.status_id = ${OrcaStatus.Success}` },
        beforeCommit,
      );
      const heldAfterDelete = await holdAdvisoryLock(afterDelete);
      const heldBeforeCommit = await holdAdvisoryLock(beforeCommit);

      let seenAfterDelete;
      let seenBeforeCommit;
      let statusBeforeCommit;
      let output;
      try {
        // Act
        const run = track(runTask(jobId, queue, message.receiptHandle));
        await waitForLockWaiters(t, afterDelete, 1);
        seenAfterDelete = await readReports(t, schema, jobId);
        await heldAfterDelete.release();
        await waitForLockWaiters(t, beforeCommit, 1);
        seenBeforeCommit = await readReports(t, schema, jobId);
        statusBeforeCommit = (await readJob(t, schema, jobId)).status_id;
        expect(run.settled()).toBe(false);
        await heldBeforeCommit.release();
        output = await run.promise;
      } finally {
        await heldAfterDelete.release();
        await heldBeforeCommit.release();
        await dropAfterDelete();
        await dropBeforeCommit();
      }

      // Assess
      const fresh = await readReports(t, schema, jobId);
      expect(fresh).not.toEqual(old);
      expect(fresh).toEqual(await referenceReports());
      expect(seenAfterDelete).toEqual(old);
      expect(seenBeforeCommit).toEqual(old);
      expect(statusBeforeCommit).toBe(OrcaStatus.GeneratingReports);
      expect(output).toEqual({
        jobId,
        phantoms: fresh.phantoms.length,
        orphans: fresh.orphans.length,
        mismatches: fresh.mismatches.length,
      });
      expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Success);
      expect(await queue.messagesLeft()).toBe(0);
    },
  );
});
