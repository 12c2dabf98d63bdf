import { SQSClient } from '@aws-sdk/client-sqs';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { DatabaseError, OrcaStatus, QueueError, task } from '../../src/index.js';
import { libraryPool, useOrcaSchema, usingPostgres } from '../helpers/database.js';
import {
  addPoisonedKeyConstraint,
  closedLoopbackPort,
  holdAdvisoryLock,
  installReportGate,
  POISONED_KEY,
  recordedBackoff,
  reportGateKey,
  spreadJobIds,
  waitForLockWait,
  watchUnhandledClientErrors,
} from '../helpers/faults.js';
import { captureLogger, recordCalls } from '../helpers/recording.js';
import {
  expectedOneOfEachReportRows,
  insertInventory,
  installStatusTrail,
  readJob,
  readReports,
  readStatusTrail,
  stageJob,
  visibleReportCounts,
} from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';

describe('faults', () => {
  const { database: t, schema, sqs } = useOrcaSchema({ buckets: [BUCKET], sqs: true, emptyTablesBeforeEach: true });
  const applicationName = `orca-faults-${process.pid}`;

  beforeAll(async () => {
    await installStatusTrail(t, schema);
    await installReportGate(t, schema);
    await spreadJobIds(t, schema);
    await addPoisonedKeyConstraint(t, schema);
  });

  /** The job row as stored, every column, as text to the microsecond. */
  const jobRow = async (jobId: number): Promise<string> => {
    const [row] = await t.query<{ row: string }>(
      `SELECT to_jsonb(j)::text AS row FROM "${schema}".reconcile_job j WHERE id = $1`,
      [jobId],
    );
    return row!.row;
  };

  /** Parses the fields of the first captured line that starts with `prefix`. */
  const fieldsOf = (lines: string[], prefix: string): Record<string, unknown> | undefined => {
    const line = lines.find((candidate) => candidate.startsWith(`${prefix} {`));
    return line === undefined ? undefined : (JSON.parse(line.slice(prefix.length + 1)) as Record<string, unknown>);
  };

  // Real server only: terminating a backend needs a second session and a server process per
  // connection; PGlite is one in-process backend.
  it.runIf(usingPostgres)(
    'retries the report transaction on a fresh connection when its backend is terminated mid-transaction',
    async () => {
      // Prepare: the report transaction will pause after writing its rows, waiting for a lock
      // this test holds. The library gets a pool of its own, so a retry gets a new connection.
      const pool = libraryPool(applicationName);
      const unhandledClientErrors = watchUnhandledClientErrors(pool);
      const queue = await sqs.createQueue({ fifo: true });
      const { jobId, keys, input } = await stageJob(t, schema, BUCKET, queue);
      const expected = await expectedOneOfEachReportRows(t, jobId, BUCKET, keys);
      const gate = await holdAdvisoryLock(reportGateKey(jobId));
      const { waits, retry } = recordedBackoff();
      const { logger, lines } = captureLogger();

      // Act
      const outcome = task(input, { database: pool, sqs: sqs.sqs, schema, logger, retry }).catch((thrown: unknown) => thrown);
      let visibleWhilePaused: number[] | undefined;
      let statusWhilePaused: number | undefined;
      let terminated: boolean | undefined;
      let victim: number | undefined;
      let result: unknown;
      try {
        const paused = await waitForLockWait(t, applicationName, reportGateKey(jobId));
        victim = paused.pid;
        visibleWhilePaused = await visibleReportCounts(t, schema, jobId);
        statusWhilePaused = (await readJob(t, schema, jobId)).status_id;
        // Waits until the backend is gone, so it cannot take the lock released below.
        const [row] = await t.query<{ terminated: boolean }>('SELECT pg_terminate_backend($1, 5000) AS terminated', [
          paused.pid,
        ]);
        terminated = row!.terminated;
      } finally {
        await gate.release();
        result = await outcome;
        await pool.end();
      }

      // Assess: nothing of the interrupted transaction was ever visible or kept.
      expect(terminated).toBe(true);
      expect(visibleWhilePaused).toEqual([0, 0, 0]);
      expect(statusWhilePaused).toBe(OrcaStatus.GeneratingReports);
      expect(result).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
      expect(waits).toEqual([1_000]);
      expect(lines.filter((line) => line.startsWith('warn '))).toEqual([
        expect.stringContaining('generate reports failed, retry 1 of 3: terminating connection due to administrator command'),
      ]);
      const [stillThere] = await t.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1', [victim]);
      expect(Number(stillThere!.n)).toBe(0);

      expect(await readReports(t, schema, jobId)).toEqual(expected);
      const job = await readJob(t, schema, jobId);
      expect(job.status_id).toBe(OrcaStatus.Success);
      expect(job.error_message).toBeNull();
      expect((await readStatusTrail(t, schema, jobId)).map((entry) => entry.status_id)).toEqual([
        OrcaStatus.GeneratingReports,
        OrcaStatus.Success,
      ]);
      expect(await queue.messagesLeft()).toBe(0);
      // The lost connection must not surface as an 'error' event nobody handles: outside a test
      // runner that is an uncaught exception, which ends the Lambda process before any retry
      // (leaving the job in 'generating reports').
      expect(unhandledClientErrors).toEqual([]);
    },
  );

  it('throws DatabaseError after the first try and three retries when the database is unreachable, and deletes nothing', async () => {
    // Prepare: a pool pointed at a loopback port nothing listens on.
    const port = await closedLoopbackPort();
    const unreachable = new pg.Pool({ host: '127.0.0.1', port, user: 'postgres', database: 'test' });
    unreachable.on('error', () => undefined);
    const database = recordCalls(unreachable);
    const client = recordCalls(sqs.sqs);
    const queue = await sqs.createQueue({ fifo: true });
    const { jobId, input } = await stageJob(t, schema, BUCKET, queue);
    const before = await jobRow(jobId);
    const { waits, retry } = recordedBackoff();
    const { logger, lines } = captureLogger();

    // Act
    let error: unknown;
    try {
      error = await task(input, { database: database.spy, sqs: client.spy, schema, logger, retry }).catch(
        (thrown: unknown) => thrown,
      );
    } finally {
      await unreachable.end();
    }

    // Assess
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'DATABASE', operation: 'start job', cause: { code: 'ECONNREFUSED' } });
    expect((error as Error).message).toMatch(/^start job failed: .*ECONNREFUSED/);
    // 'start job' waits 1 s, 2 s, 4 s (zero jitter); so does the attempt to mark the job error.
    expect(waits).toEqual([1_000, 2_000, 4_000, 1_000, 2_000, 4_000]);
    expect(database.calls.filter((call) => call === 'connect')).toHaveLength(8);
    expect(lines.filter((line) => line.includes('start job failed, retry'))).toHaveLength(3);
    expect(fieldsOf(lines, 'error could not mark the job as error')).toMatchObject({
      jobId,
      error: (error as Error).message,
      statusUpdateError: expect.stringContaining('ECONNREFUSED'),
    });
    expect(client.calls).toEqual([]);
    expect(await queue.messagesLeft()).toBe(1);
    expect(await jobRow(jobId)).toBe(before);
  });

  it('keeps the committed reports when the SQS endpoint is down, and a redelivery then only deletes the message', async () => {
    // Prepare: an SQS client pointed at a loopback port nothing listens on.
    const port = await closedLoopbackPort();
    const downSqs = new SQSClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    const down = recordCalls(downSqs);
    const queue = await sqs.createQueue({ fifo: true });
    const { jobId, keys, message, input } = await stageJob(t, schema, BUCKET, queue);
    const expected = await expectedOneOfEachReportRows(t, jobId, BUCKET, keys);
    const { waits, retry } = recordedBackoff();

    // Act: the first delivery cannot delete its message.
    let error: unknown;
    try {
      error = await task(input, { database: t.db, sqs: down.spy, schema, retry }).catch((thrown: unknown) => thrown);
    } finally {
      downSqs.destroy();
    }

    // Assess
    expect(error).toBeInstanceOf(QueueError);
    expect(error).toMatchObject({ code: 'QUEUE', queueUrl: queue.url });
    expect(String((error as QueueError).cause)).toMatch(/ECONNREFUSED/);
    expect(down.calls.filter((call) => call === 'send')).toHaveLength(4);
    expect(waits).toEqual([1_000, 2_000, 4_000]);
    expect(await readReports(t, schema, jobId)).toEqual(expected);
    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Success);
    expect(job.error_message).toBeNull();
    expect(job.end_time).toBeInstanceOf(Date);
    expect(await queue.messagesLeft()).toBe(1);

    // Act: SQS redelivers the message (its visibility lapses) to a worker that can reach SQS.
    await queue.makeVisible(message.receiptHandle);
    const redelivered = await queue.receive();
    expect(redelivered).toMatchObject({ messageId: message.messageId, body: { jobId }, receiveCount: 2 });
    const jobBefore = await jobRow(jobId);
    const trailBefore = await readStatusTrail(t, schema, jobId);
    const { logger, lines } = captureLogger();
    const output = await task(
      { ...input, messageReceiptHandle: redelivered!.receiptHandle },
      { database: t.db, sqs: sqs.sqs, schema, logger, retry: recordedBackoff().retry },
    );

    // Assess: same counts, nothing rewritten, message gone.
    expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    expect(await readReports(t, schema, jobId)).toEqual(expected);
    expect(await jobRow(jobId)).toBe(jobBefore);
    expect(await readStatusTrail(t, schema, jobId)).toEqual(trailBefore);
    expect(fieldsOf(lines, 'info reconciliation finished')).toMatchObject({ jobId, regenerated: false });
    expect(await queue.messagesLeft()).toBe(0);
  });

  it('throws the original failure, and logs both, when marking the job error fails too', async () => {
    // Prepare: report generation fails on a real constraint, and the database refuses to set
    // this job to error.
    const queue = await sqs.createQueue();
    const { jobId, input } = await stageJob(t, schema, BUCKET, queue);
    await insertInventory(t, schema, { jobId, bucket: BUCKET, keyPath: POISONED_KEY });
    const s = `"${schema}"`;
    await t.exec(`
CREATE FUNCTION ${s}.refuse_error_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'test fault: status error refused for job %', NEW.id;
END
$$;
CREATE TRIGGER refuse_error_status BEFORE UPDATE ON ${s}.reconcile_job
  FOR EACH ROW WHEN (NEW.status_id = ${OrcaStatus.Error} AND NEW.id = ${jobId})
  EXECUTE FUNCTION ${s}.refuse_error_status();`);
    const { waits, retry } = recordedBackoff();
    const { logger, lines } = captureLogger();

    // Act
    let error: unknown;
    try {
      error = await task(input, { database: t.db, sqs: sqs.sqs, schema, logger, retry }).catch((thrown: unknown) => thrown);
    } finally {
      await t.exec(`DROP TRIGGER refuse_error_status ON ${s}.reconcile_job; DROP FUNCTION ${s}.refuse_error_status();`);
    }

    // Assess: the caller gets the report failure, not the status update's.
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'DATABASE', operation: 'generate reports', sqlState: '23514' });
    const message = (error as Error).message;
    expect(message).toContain('orphan_key_is_not_poison');
    expect(message).not.toContain('test fault');
    expect(waits).toEqual([]); // neither failure is transient

    expect(fieldsOf(lines, 'error reconciliation failed')).toEqual({ jobId, error: message });
    expect(fieldsOf(lines, 'error could not mark the job as error')).toEqual({
      jobId,
      error: message,
      statusUpdateError: `test fault: status error refused for job ${jobId}`,
    });
    // With its status update refused, the job keeps the status the run gave it.
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.GeneratingReports);
    expect(await readReports(t, schema, jobId)).toEqual({ phantoms: [], orphans: [], mismatches: [] });
    expect(await queue.messagesLeft()).toBe(1);
  });
});
