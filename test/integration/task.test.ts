import { beforeAll, describe, expect, it } from 'vitest';
import {
  DatabaseError,
  InvalidInputError,
  JobNotFoundError,
  OrcaStatus,
  QueueError,
  task,
  type TaskInput,
} from '../../src/index.js';
import { useOrcaSchema } from '../helpers/database.js';
import { addPoisonedKeyConstraint, POISONED_KEY, recordedBackoff } from '../helpers/faults.js';
import { recordCalls } from '../helpers/recording.js';
import { insertInventory, insertJob, installStatusTrail, readJob, readReports, readStatusTrail, seedOneOfEachReport } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';

describe('task', () => {
  const { database: t, schema, sqs } = useOrcaSchema({ buckets: [BUCKET], sqs: true, emptyTablesBeforeEach: true });

  beforeAll(async () => {
    await installStatusTrail(t, schema);
    await addPoisonedKeyConstraint(t, schema);
  });

  const databaseNow = async (): Promise<number> => {
    const [row] = await t.query<{ now: Date }>('SELECT clock_timestamp() AS now');
    return row!.now.getTime();
  };

  /** Every job row and the row count of each report table, as text, timestamps to the microsecond. */
  const snapshot = async (): Promise<string[]> =>
    (
      await t.query<{ row: string }>(
        `SELECT to_jsonb(j)::text AS row FROM "${schema}".reconcile_job j
         UNION ALL
         SELECT concat_ws(' ', (SELECT count(*) FROM "${schema}".reconcile_phantom_report),
                               (SELECT count(*) FROM "${schema}".reconcile_orphan_report),
                               (SELECT count(*) FROM "${schema}".reconcile_catalog_mismatch_report))
         ORDER BY 1`,
      )
    ).map((r) => r.row);

  it('marks the job generating reports, writes the reports, marks it success and deletes the FIFO message', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET);
    const keys = await seedOneOfEachReport(t, schema, jobId, BUCKET);
    const queue = await sqs.createQueue({ fifo: true });
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
    const before = await databaseNow();

    // Act
    const output = await task(
      { jobId, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle },
      { database: t.db, sqs: sqs.sqs, schema, retry: recordedBackoff().retry },
    );

    // Assess
    const after = await databaseNow();
    expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    const reports = await readReports(t, schema, jobId);
    expect(reports.phantoms.map((row) => row['key_path'])).toEqual([keys.phantom]);
    expect(reports.orphans.map((row) => row['key_path'])).toEqual([keys.orphan]);
    expect(reports.mismatches.map((row) => [row['key_path'], row['discrepancy_type']])).toEqual([[keys.mismatch, 'etag']]);

    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Success);
    expect(job.error_message).toBeNull();
    expect(job.end_time).toBeInstanceOf(Date);
    for (const stamp of [job.end_time!.getTime(), job.last_update.getTime()]) {
      expect(stamp).toBeGreaterThanOrEqual(before);
      expect(stamp).toBeLessThanOrEqual(after);
    }
    expect(await readStatusTrail(t, schema, jobId)).toEqual([
      { status_id: OrcaStatus.GeneratingReports, end_time: null, error_message: null },
      { status_id: OrcaStatus.Success, end_time: job.end_time, error_message: null },
    ]);
    expect(await queue.messagesLeft()).toBe(0);
  });

  it('re-runs a job that failed before: its end time and error are cleared when reports start', async () => {
    // Prepare: a redelivered message for a job an earlier run marked error.
    const jobId = await insertJob(t, schema, BUCKET, OrcaStatus.Error);
    await t.query(
      `UPDATE "${schema}".reconcile_job SET end_time = '2026-01-01T02:00:00Z', error_message = 'earlier failure' WHERE id = $1`,
      [jobId],
    );
    await seedOneOfEachReport(t, schema, jobId, BUCKET);
    const queue = await sqs.createQueue();
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });

    // Act
    const output = await task(
      { jobId, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle },
      { database: t.db, sqs: sqs.sqs, schema, retry: recordedBackoff().retry },
    );

    // Assess
    expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    const trail = await readStatusTrail(t, schema, jobId);
    // The first entry is the update made by the fixture above.
    expect(trail.slice(1).map((entry) => [entry.status_id, entry.end_time, entry.error_message])).toEqual([
      [OrcaStatus.GeneratingReports, null, null],
      [OrcaStatus.Success, expect.any(Date), null],
    ]);
    expect((await readJob(t, schema, jobId)).error_message).toBeNull();
    expect(await queue.messagesLeft()).toBe(0);
  });

  it('marks the job error with the failure’s message, re-throws it and leaves the message for redelivery', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobId, BUCKET);
    await insertInventory(t, schema, { jobId, bucket: BUCKET, keyPath: POISONED_KEY });
    const queue = await sqs.createQueue({ fifo: true });
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
    const { waits, retry } = recordedBackoff();
    const before = await databaseNow();

    // Act
    const error = await task(
      { jobId, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle },
      { database: t.db, sqs: sqs.sqs, schema, retry },
    ).catch((thrown: unknown) => thrown);

    // Assess
    const after = await databaseNow();
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'DATABASE', operation: 'generate reports', sqlState: '23514' });
    expect((error as Error).message).toContain('orphan_key_is_not_poison');
    expect(waits).toEqual([]); // a constraint violation is not transient: no retry

    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Error);
    expect(job.error_message).toBe((error as Error).message);
    expect(job.end_time).toBeInstanceOf(Date);
    for (const stamp of [job.end_time!.getTime(), job.last_update.getTime()]) {
      expect(stamp).toBeGreaterThanOrEqual(before);
      expect(stamp).toBeLessThanOrEqual(after);
    }
    expect((await readStatusTrail(t, schema, jobId)).map((entry) => entry.status_id)).toEqual([
      OrcaStatus.GeneratingReports,
      OrcaStatus.Error,
    ]);
    expect(await readReports(t, schema, jobId)).toEqual({ phantoms: [], orphans: [], mismatches: [] });

    expect(await queue.messagesLeft()).toBe(1);
    await queue.makeVisible(message.receiptHandle);
    const redelivered = await queue.receive();
    expect(redelivered).toMatchObject({ messageId: message.messageId, body: { jobId }, receiveCount: 2 });
  });

  it('throws JobNotFoundError for a job id no row has, and changes nothing', async () => {
    // Prepare
    const existing = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, existing, BUCKET);
    const missing = existing + 1000;
    const queue = await sqs.createQueue();
    const message = await queue.sendAndReceiveJob({ jobId: missing, orcaArchiveLocation: BUCKET });
    const before = await snapshot();

    // Act
    const failure = task(
      { jobId: missing, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle },
      { database: t.db, sqs: sqs.sqs, schema, retry: recordedBackoff().retry },
    );

    // Assess
    await expect(failure).rejects.toBeInstanceOf(JobNotFoundError);
    await expect(failure).rejects.toMatchObject({ code: 'JOB_NOT_FOUND', jobId: missing });
    expect(await snapshot()).toEqual(before);
    expect(await queue.messagesLeft()).toBe(1);
  });

  it('throws QueueError after every delete retry fails, with the reports committed and the job success', async () => {
    // Prepare: a well-formed URL of a queue the endpoint does not have.
    const jobId = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobId, BUCKET);
    const queue = await sqs.createQueue({ fifo: true });
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
    const missingQueueUrl = queue.url.replace(queue.name, 'orca-no-such-queue.fifo');
    const { waits, retry } = recordedBackoff();

    // Act
    const error = await task(
      { jobId, orcaArchiveLocation: BUCKET, queueUrl: missingQueueUrl, messageReceiptHandle: message.receiptHandle },
      { database: t.db, sqs: sqs.sqs, schema, retry },
    ).catch((thrown: unknown) => thrown);

    // Assess
    expect(error).toBeInstanceOf(QueueError);
    expect(error).toMatchObject({ code: 'QUEUE', queueUrl: missingQueueUrl, cause: { name: 'QueueDoesNotExist' } });
    // A queue that does not exist is a permanent failure: the first try only, no retry.
    expect(waits).toEqual([]);
    const reports = await readReports(t, schema, jobId);
    expect([reports.phantoms.length, reports.orphans.length, reports.mismatches.length]).toEqual([1, 1, 1]);
    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Success);
    expect(job.error_message).toBeNull();
    expect(job.end_time).toBeInstanceOf(Date);
    expect(await queue.messagesLeft()).toBe(1);
  });

  describe('rejects bad input before any database or queue call', () => {
    const badInputs: Array<[string, Record<string, unknown>, string]> = [
      ['jobId 0', { jobId: 0 }, 'jobId'],
      ['jobId -1', { jobId: -1 }, 'jobId'],
      ['jobId 1.5', { jobId: 1.5 }, 'jobId'],
      ['jobId "1"', { jobId: '1' }, 'jobId'],
      ['jobId NaN', { jobId: Number.NaN }, 'jobId'],
      ['a missing orcaArchiveLocation', { orcaArchiveLocation: undefined }, 'orcaArchiveLocation'],
      ['an orcaArchiveLocation that is no bucket name', { orcaArchiveLocation: 'prefix/orca' }, 'orcaArchiveLocation'],
      ['an empty messageReceiptHandle', { messageReceiptHandle: '' }, 'messageReceiptHandle'],
      ['an empty queueUrl', { queueUrl: '' }, 'queueUrl'],
      ['a queueUrl that is not a string', { queueUrl: 42 }, 'queueUrl'],
    ];

    it.each(badInputs)('%s', async (_label, override, field) => {
      // Prepare
      const jobId = await insertJob(t, schema, BUCKET);
      await seedOneOfEachReport(t, schema, jobId, BUCKET);
      const queue = await sqs.createQueue();
      const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
      const database = recordCalls(t.db);
      const client = recordCalls(sqs.sqs);
      const input = {
        jobId,
        orcaArchiveLocation: BUCKET,
        queueUrl: queue.url,
        messageReceiptHandle: message.receiptHandle,
        ...override,
      } as TaskInput;
      const before = await snapshot();

      // Act
      const failure = task(input, { database: database.spy, sqs: client.spy, schema, retry: recordedBackoff().retry });

      // Assess
      await expect(failure).rejects.toBeInstanceOf(InvalidInputError);
      await expect(failure).rejects.toMatchObject({ code: 'INVALID_INPUT', field });
      await expect(failure).rejects.toThrow(field);
      expect(database.calls).toEqual([]);
      expect(client.calls).toEqual([]);
      expect(await snapshot()).toEqual(before);
      expect(await queue.messagesLeft()).toBe(1);
    });

    it('a schema name that is not a PostgreSQL identifier', async () => {
      // Prepare
      const jobId = await insertJob(t, schema, BUCKET);
      const queue = await sqs.createQueue();
      const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
      const database = recordCalls(t.db);
      const before = await snapshot();

      // Act
      const failure = task(
        { jobId, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle },
        { database: database.spy, sqs: sqs.sqs, schema: `${schema}"; DROP TABLE x; --` },
      );

      // Assess
      await expect(failure).rejects.toMatchObject({ name: 'InvalidInputError', field: 'schema' });
      expect(database.calls).toEqual([]);
      expect(await snapshot()).toEqual(before);
      expect(await queue.messagesLeft()).toBe(1);
    });
  });
});
