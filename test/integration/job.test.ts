import { describe, expect, it } from 'vitest';
import { InvalidInputError, JobNotFoundError, OrcaStatus, updateJob } from '../../src/index.js';
import { useOrcaSchema } from '../helpers/database.js';
import { insertJob, readJob, snapshotJobs } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';

describe('updateJob', () => {
  const { database: t, schema } = useOrcaSchema({ buckets: [BUCKET] });

  const databaseNow = async (): Promise<Date> => {
    const [row] = await t.query<{ now: Date }>('SELECT clock_timestamp() AS now');
    return row!.now;
  };

  /** A job that already failed once: error status, an end time and a message. */
  const insertFailedJob = async (): Promise<number> => {
    const jobId = await insertJob(t, schema, BUCKET, OrcaStatus.Error);
    await t.query(
      `UPDATE "${schema}".reconcile_job
       SET end_time = '2026-01-01T02:00:00Z', last_update = '2026-01-01T02:00:00Z', error_message = 'previous failure'
       WHERE id = $1`,
      [jobId],
    );
    return jobId;
  };

  it('moves a job to generating reports, clearing end_time and error_message and stamping last_update', async () => {
    // Prepare
    const jobId = await insertFailedJob();
    const before = await databaseNow();

    // Act
    await updateJob(t.db, { jobId, status: OrcaStatus.GeneratingReports }, { schema });

    // Assess
    const after = await databaseNow();
    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.GeneratingReports);
    expect(job.end_time).toBeNull();
    expect(job.error_message).toBeNull();
    expect(job.last_update.getTime()).toBeGreaterThanOrEqual(before.getTime());
    expect(job.last_update.getTime()).toBeLessThanOrEqual(after.getTime());
  });

  it('marks a job error with its message and stamps end_time and last_update', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET, OrcaStatus.GeneratingReports);
    const before = await databaseNow();

    // Act
    await updateJob(t.db, { jobId, status: OrcaStatus.Error, errorMessage: 'inventory manifest unreadable' }, { schema });

    // Assess
    const after = await databaseNow();
    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Error);
    expect(job.error_message).toBe('inventory manifest unreadable');
    expect(job.end_time).toBeInstanceOf(Date);
    for (const stamp of [job.end_time!, job.last_update]) {
      expect(stamp.getTime()).toBeGreaterThanOrEqual(before.getTime());
      expect(stamp.getTime()).toBeLessThanOrEqual(after.getTime());
    }
  });

  it('marks a job success with no message and stamps end_time and last_update', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET, OrcaStatus.GeneratingReports);
    const before = await databaseNow();

    // Act
    await updateJob(t.db, { jobId, status: OrcaStatus.Success }, { schema });

    // Assess
    const after = await databaseNow();
    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Success);
    expect(job.error_message).toBeNull();
    expect(job.end_time).toBeInstanceOf(Date);
    for (const stamp of [job.end_time!, job.last_update]) {
      expect(stamp.getTime()).toBeGreaterThanOrEqual(before.getTime());
      expect(stamp.getTime()).toBeLessThanOrEqual(after.getTime());
    }
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['empty', ''],
    ['blank', '  \t '],
  ])('refuses error status with a %s message and leaves the row as it was', async (_label, errorMessage) => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET, OrcaStatus.GeneratingReports);
    const before = await snapshotJobs(t, schema);

    // Act
    const update = updateJob(t.db, { jobId, status: OrcaStatus.Error, errorMessage }, { schema });

    // Assess
    await expect(update).rejects.toBeInstanceOf(InvalidInputError);
    await expect(update).rejects.toMatchObject({ code: 'INVALID_INPUT', field: 'errorMessage' });
    expect(await snapshotJobs(t, schema)).toEqual(before);
  });

  it.each([
    ['success', OrcaStatus.Success],
    ['generating reports', OrcaStatus.GeneratingReports],
    ['staged', OrcaStatus.Staged],
    ['getting S3 list', OrcaStatus.GettingS3List],
  ])('refuses a message with status %s and leaves the row as it was', async (_label, status) => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET, OrcaStatus.GeneratingReports);
    const before = await snapshotJobs(t, schema);

    // Act
    const update = updateJob(t.db, { jobId, status, errorMessage: 'should not be stored' }, { schema });

    // Assess
    await expect(update).rejects.toMatchObject({ name: 'InvalidInputError', field: 'errorMessage' });
    expect(await snapshotJobs(t, schema)).toEqual(before);
  });

  it('throws JobNotFoundError for an id no job has, and changes no row', async () => {
    // Prepare
    const existing = await insertJob(t, schema, BUCKET);
    const missing = existing + 1000;
    const before = await snapshotJobs(t, schema);

    // Act
    const update = updateJob(t.db, { jobId: missing, status: OrcaStatus.Success }, { schema });

    // Assess
    await expect(update).rejects.toBeInstanceOf(JobNotFoundError);
    await expect(update).rejects.toMatchObject({ code: 'JOB_NOT_FOUND', jobId: missing });
    expect(await snapshotJobs(t, schema)).toEqual(before);
  });

  it.each([
    ['0', 0],
    ['6', 6],
    ['2.5', 2.5],
    ['NaN', Number.NaN],
    ['the string "5"', '5'],
    ['null', null],
    ['undefined', undefined],
  ])('refuses status %s with InvalidInputError naming status, before any change', async (_label, status) => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET);
    const before = await snapshotJobs(t, schema);

    // Act
    const update = updateJob(t.db, { jobId, status: status as OrcaStatus }, { schema });

    // Assess
    await expect(update).rejects.toMatchObject({ name: 'InvalidInputError', field: 'status' });
    expect(await snapshotJobs(t, schema)).toEqual(before);
  });
});
