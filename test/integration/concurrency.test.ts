import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Database, OrcaStatus, task } from '../../src/index.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import {
  countLockWaiters,
  holdAdvisoryLock,
  installPausePoint,
  jobLockKey,
  newPauseKey,
  noWait,
  spreadJobIds,
  track,
  waitForLockWaiters,
} from '../helpers/faults.js';
import { insertJob, installStatusTrail, readJob, readReports, readStatusTrail, type SeededKeys, seedOneOfEachReport } from '../helpers/rows.js';
import type { TestQueue } from '../helpers/sqs.js';

const BUCKET = 'prefix-orca-primary';
const OTHER_BUCKET = 'prefix-orca-secondary';
const WORKERS = 8;

describe('concurrent runs', () => {
  const { database: t, schema, sqs, addPool } = useOrcaSchema({
    prefix: 'orca_concurrency',
    buckets: [BUCKET, OTHER_BUCKET],
    sqs: true,
    emptyTablesBeforeEach: true,
  });
  // On the server, every worker gets a connection of its own, so the runs truly overlap and only
  // the job lock orders them. PGlite has one session and queues transactions itself.
  let workers: Database;

  beforeAll(async () => {
    await installStatusTrail(t, schema);
    await spreadJobIds(t, schema);
    if (usingPostgres) {
      workers = addPool(
        new pg.Pool({
          connectionString: process.env.DATABASE_URL,
          max: WORKERS + 2,
          application_name: 'orca-reconcile-concurrency-test',
        }),
      );
    } else {
      workers = t.db;
    }
  });

  const runTask = (jobId: number, bucket: string, queue: TestQueue, receiptHandle: string) =>
    task(
      { jobId, orcaArchiveLocation: bucket, queueUrl: queue.url, messageReceiptHandle: receiptHandle },
      { database: workers, sqs: sqs.sqs, schema, retry: noWait },
    );

  /** Receipt handles of `count` deliveries of one job message: each redelivery after its visibility lapsed. */
  const deliveries = async (queue: TestQueue, jobId: number, bucket: string, count: number): Promise<string[]> => {
    const first = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: bucket });
    const handles = [first.receiptHandle];
    while (handles.length < count) {
      await queue.makeVisible(handles.at(-1)!);
      const again = await queue.receive();
      if (!again || again.messageId !== first.messageId) throw new Error('test fixture: the job message was not redelivered');
      handles.push(again.receiptHandle);
    }
    return handles;
  };

  /** The seeded keys, one of each report, as readReports lists them. */
  const expectOneSetOf = async (jobId: number, keys: SeededKeys) => {
    const reports = await readReports(t, schema, jobId);
    expect([reports.phantoms, reports.orphans, reports.mismatches].map((rows) => rows.map((row) => row['key_path']))).toEqual([
      [keys.phantom],
      [keys.orphan],
      [keys.mismatch],
    ]);
  };

  /**
   * Transaction ids that wrote the job's report rows, and the one that last wrote the job row.
   * One writer, equal to the job's, means the reports and the success status committed together
   * and nothing rewrote either afterwards.
   */
  const writers = async (jobId: number) => {
    const [row] = await t.query<{ reports: string[]; job: string }>(
      `SELECT ARRAY(
                SELECT DISTINCT xmin::text FROM (
                  SELECT xmin FROM "${schema}".reconcile_phantom_report WHERE job_id = $1
                  UNION ALL SELECT xmin FROM "${schema}".reconcile_orphan_report WHERE job_id = $1
                  UNION ALL SELECT xmin FROM "${schema}".reconcile_catalog_mismatch_report WHERE job_id = $1) AS r
              ) AS reports,
              (SELECT xmin::text FROM "${schema}".reconcile_job WHERE id = $1) AS job`,
      [jobId],
    );
    return row!;
  };

  it(`${WORKERS} runs of one job: one set of reports, one success, the same counts for all`, async () => {
    // Prepare: the message is delivered again and again, as SQS does when a worker is slow.
    const jobId = await insertJob(t, schema, BUCKET);
    const keys = await seedOneOfEachReport(t, schema, jobId, BUCKET);
    const queue = await sqs.createQueue();
    const handles = await deliveries(queue, jobId, BUCKET, WORKERS);
    // On the server, hold the job's lock until every worker queues on it, so all of them contend.
    const gate = usingPostgres ? await holdAdvisoryLock(jobLockKey(schema, jobId)) : undefined;

    let outputs;
    try {
      // Act
      const runs = handles.map((handle) => runTask(jobId, BUCKET, queue, handle));
      if (gate) {
        await waitForLockWaiters(t, jobLockKey(schema, jobId), WORKERS);
        expect(await countLockWaiters(t, jobLockKey(schema, jobId))).toBe(WORKERS);
        await gate.release();
      }
      outputs = await Promise.all(runs);
    } finally {
      await gate?.release();
    }

    // Assess
    expect(outputs).toEqual(Array.from({ length: WORKERS }, () => ({ jobId, phantoms: 1, orphans: 1, mismatches: 1 })));
    await expectOneSetOf(jobId, keys);
    const statuses = (await readStatusTrail(t, schema, jobId)).map((entry) => entry.status_id);
    expect(statuses.filter((status) => status === OrcaStatus.Success)).toHaveLength(1);
    expect(statuses.at(-1)).toBe(OrcaStatus.Success);
    expect(statuses.slice(0, -1).every((status) => status === OrcaStatus.GeneratingReports)).toBe(true);
    const { reports, job } = await writers(jobId);
    expect(reports).toEqual([job]);
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Success);
    expect(await queue.messagesLeft()).toBe(0);
  });

  it('two jobs of two buckets run side by side and both succeed', async () => {
    // Prepare
    const jobA = await insertJob(t, schema, BUCKET);
    const keysA = await seedOneOfEachReport(t, schema, jobA, BUCKET);
    const jobB = await insertJob(t, schema, OTHER_BUCKET);
    const keysB = await seedOneOfEachReport(t, schema, jobB, OTHER_BUCKET);
    const queueA = await sqs.createQueue({ fifo: true });
    const queueB = await sqs.createQueue({ fifo: true });
    const [messageA] = await deliveries(queueA, jobA, BUCKET, 1);
    const [messageB] = await deliveries(queueB, jobB, OTHER_BUCKET, 1);

    // Act
    const outputs = await Promise.all([
      runTask(jobA, BUCKET, queueA, messageA!),
      runTask(jobB, OTHER_BUCKET, queueB, messageB!),
    ]);

    // Assess
    expect(outputs).toEqual([
      { jobId: jobA, phantoms: 1, orphans: 1, mismatches: 1 },
      { jobId: jobB, phantoms: 1, orphans: 1, mismatches: 1 },
    ]);
    await expectOneSetOf(jobA, keysA);
    await expectOneSetOf(jobB, keysB);
    expect((await readJob(t, schema, jobA)).status_id).toBe(OrcaStatus.Success);
    expect((await readJob(t, schema, jobB)).status_id).toBe(OrcaStatus.Success);
    expect([await queueA.messagesLeft(), await queueB.messagesLeft()]).toEqual([0, 0]);
  });

  it.runIf(usingPostgres)('a job waiting for its lock does not hold up another job', async () => {
    // Prepare
    const jobA = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobA, BUCKET);
    const jobB = await insertJob(t, schema, OTHER_BUCKET);
    const keysB = await seedOneOfEachReport(t, schema, jobB, OTHER_BUCKET);
    const queueA = await sqs.createQueue();
    const queueB = await sqs.createQueue();
    const [messageA] = await deliveries(queueA, jobA, BUCKET, 1);
    const [messageB] = await deliveries(queueB, jobB, OTHER_BUCKET, 1);
    const gateA = await holdAdvisoryLock(jobLockKey(schema, jobA));

    let outputA;
    let outputB;
    let aWaitingAfterB;
    let aSettledAfterB;
    let statusAWhileWaiting;
    try {
      // Act: A queues behind the held lock; B runs from start to end meanwhile.
      const runA = track(runTask(jobA, BUCKET, queueA, messageA!));
      await waitForLockWaiters(t, jobLockKey(schema, jobA), 1);
      outputB = await runTask(jobB, OTHER_BUCKET, queueB, messageB!);
      aWaitingAfterB = await countLockWaiters(t, jobLockKey(schema, jobA));
      aSettledAfterB = runA.settled();
      statusAWhileWaiting = (await readJob(t, schema, jobA)).status_id;
      await gateA.release();
      outputA = await runA.promise;
    } finally {
      await gateA.release();
    }

    // Assess
    expect(outputB).toEqual({ jobId: jobB, phantoms: 1, orphans: 1, mismatches: 1 });
    await expectOneSetOf(jobB, keysB);
    expect(aWaitingAfterB).toBe(1);
    expect(aSettledAfterB).toBe(false);
    expect(statusAWhileWaiting).toBe(OrcaStatus.Staged);
    expect(outputA).toEqual({ jobId: jobA, phantoms: 1, orphans: 1, mismatches: 1 });
    expect((await readJob(t, schema, jobA)).status_id).toBe(OrcaStatus.Success);
    expect([await queueA.messagesLeft(), await queueB.messagesLeft()]).toEqual([0, 0]);
  });

  it.runIf(usingPostgres)(
    'a run that arrives while another is mid-generation waits, then returns the stored counts without rewriting',
    async () => {
      // Prepare: the first run stops inside its report transaction, right after it marked the
      // job success and before it commits.
      const jobId = await insertJob(t, schema, BUCKET);
      const keys = await seedOneOfEachReport(t, schema, jobId, BUCKET);
      const queue = await sqs.createQueue();
      const [firstHandle, secondHandle] = await deliveries(queue, jobId, BUCKET, 2);
      const pause = newPauseKey();
      const dropPause = await installPausePoint(
        t,
        schema,
        'before_success_commit',
        { table: 'reconcile_job', event: 'UPDATE', when: `NEW.status_id = ${OrcaStatus.Success}` },
        pause,
      );
      const held = await holdAdvisoryLock(pause);

      let outputs;
      let secondWaitedOnJobLock;
      let firstSettledEarly;
      let secondSettledEarly;
      try {
        // Act
        const first = track(runTask(jobId, BUCKET, queue, firstHandle!));
        await waitForLockWaiters(t, pause, 1);
        const second = track(runTask(jobId, BUCKET, queue, secondHandle!));
        await waitForLockWaiters(t, jobLockKey(schema, jobId), 1);
        secondWaitedOnJobLock = await countLockWaiters(t, jobLockKey(schema, jobId));
        firstSettledEarly = first.settled();
        secondSettledEarly = second.settled();
        await held.release();
        outputs = await Promise.all([first.promise, second.promise]);
      } finally {
        await held.release();
        await dropPause();
      }

      // Assess
      expect(secondWaitedOnJobLock).toBe(1);
      expect([firstSettledEarly, secondSettledEarly]).toEqual([false, false]);
      expect(outputs).toEqual([
        { jobId, phantoms: 1, orphans: 1, mismatches: 1 },
        { jobId, phantoms: 1, orphans: 1, mismatches: 1 },
      ]);
      await expectOneSetOf(jobId, keys);
      expect((await readStatusTrail(t, schema, jobId)).map((entry) => entry.status_id)).toEqual([
        OrcaStatus.GeneratingReports,
        OrcaStatus.Success,
      ]);
      const { reports, job } = await writers(jobId);
      expect(reports).toEqual([job]);
      expect(await queue.messagesLeft()).toBe(0);
    },
  );
});
