import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { DatabaseError, OrcaStatus, TimeoutError, createHandler, type HandlerOptions } from '../../src/index.js';
import { libraryPool, useOrcaSchema, usingPostgres } from '../helpers/database.js';
import {
  closedLoopbackPort,
  holdAdvisoryLock,
  installPausePoint,
  installReportGate,
  jobLockKey,
  newPauseKey,
  recordedBackoff,
  reportGateKey,
  spreadJobIds,
  track,
  waitForLockWaiters,
} from '../helpers/faults.js';
import { captureLogger, recordCalls } from '../helpers/recording.js';
import { installStatusTrail, readJob, readReports, readStatusTrail, stageJob } from '../helpers/rows.js';
import type { TestQueue } from '../helpers/sqs.js';

const BUCKET = 'prefix-orca-primary';
// Small enough to keep the tests short, and still above the 5 s the failure record may take
// (src/task.ts RECORD_FAILURE_TIMEOUT_MS), as the handler's documentation requires.
const MARGIN_MS = 6_000;
// What the run gets before its deadline: the invocation's remaining time less the margin.
const BUDGET_MS = 1_500;

/**
 * A Lambda context whose remaining time runs down with the wall clock, as Lambda's does;
 * `endsAt` is when the simulated invocation would be stopped.
 */
function lambdaContext(remainingMs: number) {
  const endsAt = Date.now() + remainingMs;
  return { endsAt, context: { awsRequestId: 'timeouts-test', getRemainingTimeInMillis: () => endsAt - Date.now() } };
}

// Cases that need the server to cut off a statement or a lock wait run against PostgreSQL only:
// PGlite accepts statement_timeout and lock_timeout but never enforces them (one single-user
// backend, no timer interrupts), and its advisory locks cannot be held by a second session.
describe('timeouts', () => {
  const { database: t, schema, sqs, addPool } = useOrcaSchema({
    buckets: [BUCKET],
    sqs: true,
    emptyTablesBeforeEach: true,
  });
  let library: pg.Pool | undefined;
  const applicationName = `orca-timeouts-${process.pid}`;

  beforeAll(async () => {
    await installStatusTrail(t, schema);
    await installReportGate(t, schema);
    await spreadJobIds(t, schema);
    if (usingPostgres) library = addPool(libraryPool(applicationName));
  });

  const handlerFor = (queue: TestQueue, database: HandlerOptions['database']) => {
    const { logger, lines } = captureLogger();
    const { waits, retry } = recordedBackoff();
    const handler = createHandler({
      database,
      sqs: sqs.sqs,
      queueUrl: queue.url,
      env: {},
      schema,
      logger,
      retry,
      timeoutMarginMs: MARGIN_MS,
    });
    return { handler, lines, waits };
  };

  it.runIf(usingPostgres)(
    'cuts off a report transaction blocked past the deadline and marks the job error before the invocation ends',
    async () => {
      // Prepare: the report statement will wait, inside its transaction, for a lock this test holds.
      const queue = await sqs.createQueue({ fifo: true });
      const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
      const gate = await holdAdvisoryLock(reportGateKey(jobId));
      const { handler, lines, waits } = handlerFor(queue, library!);
      const { endsAt, context } = lambdaContext(MARGIN_MS + BUDGET_MS);
      const startedAt = Date.now();

      // Act
      let error: unknown;
      try {
        error = await handler(event, context).catch((thrown: unknown) => thrown);
      } finally {
        await gate.release();
      }
      const settledAt = Date.now();

      // Assess: a TimeoutError at the deadline, long before the invocation would be stopped.
      expect(error).toBeInstanceOf(TimeoutError);
      const timeout = error as TimeoutError;
      expect(timeout.code).toBe('TIMEOUT');
      expect(timeout.message).toMatch(/^generate reports timed out after 1\.[5-7] s \(time budget 1\.[45] s\)$/);
      expect(timeout.elapsedMs).toBeGreaterThanOrEqual(BUDGET_MS - 50);
      expect(timeout.elapsedMs).toBeLessThan(BUDGET_MS + 250);
      expect(timeout.budgetMs).toBeGreaterThan(BUDGET_MS - 100);
      expect(timeout.budgetMs).toBeLessThanOrEqual(BUDGET_MS);
      // PostgreSQL itself cancelled the wait: statement_timeout (57014) or lock_timeout (55P03).
      expect(['57014', '55P03']).toContain((timeout.cause as { code?: string }).code);
      expect(settledAt - startedAt).toBeGreaterThanOrEqual(BUDGET_MS - 50);
      expect(settledAt).toBeLessThan(endsAt);
      expect(waits).toEqual([]); // a timeout is not transient

      const job = await readJob(t, schema, jobId);
      expect(job.status_id).toBe(OrcaStatus.Error);
      expect(job.error_message).toBe(timeout.message);
      expect(job.end_time).toBeInstanceOf(Date);
      expect(job.end_time!.getTime()).toBeLessThanOrEqual(settledAt);
      expect(await readStatusTrail(t, schema, jobId)).toEqual([
        { status_id: OrcaStatus.GeneratingReports, end_time: null, error_message: null },
        { status_id: OrcaStatus.Error, end_time: job.end_time, error_message: timeout.message },
      ]);
      expect(await readReports(t, schema, jobId)).toEqual({ phantoms: [], orphans: [], mismatches: [] });
      expect(lines.some((line) => line.startsWith('error reconciliation failed') && line.includes(timeout.message))).toBe(true);
      expect(await queue.messagesLeft()).toBe(1);
    },
  );

  it.runIf(usingPostgres)(
    'cuts off the wait for a job lock another session holds, and marks the job error without waiting for that lock',
    async () => {
      // Prepare: another session holds the job's lock for the whole invocation.
      const queue = await sqs.createQueue();
      const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
      const holder = await holdAdvisoryLock(jobLockKey(schema, jobId));
      const { handler, lines } = handlerFor(queue, library!);
      const { endsAt, context } = lambdaContext(MARGIN_MS + BUDGET_MS);
      const startedAt = Date.now();

      // Act
      let error: unknown;
      let job;
      try {
        error = await handler(event, context).catch((thrown: unknown) => thrown);
        // Read while the other session still holds the lock: the failure is recorded already.
        job = await readJob(t, schema, jobId);
      } finally {
        await holder.release();
      }
      const settledAt = Date.now();

      // Assess
      expect(error).toBeInstanceOf(TimeoutError);
      const timeout = error as TimeoutError;
      expect(timeout.message).toMatch(/^start job timed out after 1\.[5-7] s \(time budget 1\.[45] s\)$/);
      expect(['57014', '55P03']).toContain((timeout.cause as { code?: string }).code);
      expect(settledAt).toBeLessThan(endsAt);
      expect(settledAt - startedAt).toBeGreaterThanOrEqual(BUDGET_MS - 50);
      // The failure record did not wait out its own 5 s budget on the lock.
      expect(settledAt - startedAt).toBeLessThan(BUDGET_MS + 5_000);

      expect(job.status_id).toBe(OrcaStatus.Error);
      expect(job.error_message).toBe(timeout.message);
      expect(job.end_time).toBeInstanceOf(Date);
      // Never 'generating reports': the run never got the lock it needed to start.
      expect(await readStatusTrail(t, schema, jobId)).toEqual([
        { status_id: OrcaStatus.Error, end_time: job.end_time, error_message: timeout.message },
      ]);
      expect(lines.join('\n')).not.toContain('could not mark the job as error');
      expect(await queue.messagesLeft()).toBe(1);
    },
  );

  it.runIf(usingPostgres)(
    'never leaves a job in generating reports when another session takes the job lock between the two steps',
    async () => {
      // Prepare: step 1 stops after marking the job 'generating reports', holding the job lock;
      // another session queues for that lock and gets it as step 1 commits, before step 2.
      const queue = await sqs.createQueue();
      const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
      const pause = newPauseKey();
      const dropPause = await installPausePoint(
        t,
        schema,
        `after_start_${jobId}`,
        { table: 'reconcile_job', event: 'UPDATE', when: `NEW.status_id = ${OrcaStatus.GeneratingReports} AND NEW.id = ${jobId}` },
        pause,
      );
      const paused = await holdAdvisoryLock(pause);
      const { handler, lines } = handlerFor(queue, library!);
      const { endsAt, context } = lambdaContext(MARGIN_MS + BUDGET_MS);

      // Act
      const outcome = track(handler(event, context).catch((thrown: unknown) => thrown));
      let holder: Awaited<ReturnType<typeof holdAdvisoryLock>> | undefined;
      let error: unknown;
      let job;
      try {
        await waitForLockWaiters(t, pause, 1);
        const taking = holdAdvisoryLock(jobLockKey(schema, jobId));
        await waitForLockWaiters(t, jobLockKey(schema, jobId), 1);
        await paused.release();
        holder = await taking;
        error = await outcome.promise;
        job = await readJob(t, schema, jobId);
      } finally {
        await paused.release();
        await holder?.release();
        await dropPause();
      }

      // Assess
      expect(error).toBeInstanceOf(TimeoutError);
      expect((error as Error).message).toMatch(/^generate reports timed out after/);
      expect(Date.now()).toBeLessThan(endsAt);
      expect(job.status_id).toBe(OrcaStatus.Error);
      expect(job.error_message).toBe((error as Error).message);
      expect((await readStatusTrail(t, schema, jobId)).map((entry) => entry.status_id)).toEqual([
        OrcaStatus.GeneratingReports,
        OrcaStatus.Error,
      ]);
      expect(lines.join('\n')).not.toContain('could not mark the job as error');
      expect(await queue.messagesLeft()).toBe(1);
    },
  );

  it('gives up at once when the deadline has already passed as the handler starts, and marks the job error', async () => {
    // Prepare: the invocation has less time left than the margin, so the deadline is 1 s ago.
    const queue = await sqs.createQueue();
    const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
    const { handler, waits } = handlerFor(queue, t.db);
    const { endsAt, context } = lambdaContext(MARGIN_MS - 1_000);
    const startedAt = Date.now();

    // Act
    const error = await handler(event, context).catch((thrown: unknown) => thrown);
    const settledAt = Date.now();

    // Assess: the first transaction refuses to start, and the failure record (which has its own
    // 5 s past the deadline) marks the job error.
    expect(error).toBeInstanceOf(TimeoutError);
    const timeout = error as TimeoutError;
    expect(timeout.message).toMatch(/^start job timed out after 0\.\d s: its deadline had passed (0\.9|1\.\d) s before it started$/);
    expect(timeout.elapsedMs).toBeLessThan(500);
    expect(settledAt - startedAt).toBeLessThan(2_000);
    expect(settledAt).toBeLessThan(endsAt);
    expect(waits).toEqual([]);

    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Error);
    expect(job.error_message).toBe(timeout.message);
    expect(job.end_time).toBeInstanceOf(Date);
    expect(await readStatusTrail(t, schema, jobId)).toEqual([
      { status_id: OrcaStatus.Error, end_time: job.end_time, error_message: timeout.message },
    ]);
    expect(await readReports(t, schema, jobId)).toEqual({ phantoms: [], orphans: [], mismatches: [] });
    expect(await queue.messagesLeft()).toBe(1);
  });

  it('stops retrying a refused connection when the next backoff would end past the deadline', async () => {
    // Prepare: a database nobody listens for (every connect is refused, a transient error) and a
    // 3.5 s budget. The retry clock moves only when the library sleeps, so no real time passes.
    const port = await closedLoopbackPort();
    const unreachable = new pg.Pool({ host: '127.0.0.1', port, user: 'postgres', database: 'test' });
    unreachable.on('error', () => undefined);
    const database = recordCalls(unreachable);
    const queue = await sqs.createQueue();
    const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
    const waits: number[] = [];
    let slept = 0;
    const { logger, lines } = captureLogger();
    const handler = createHandler({
      database: database.spy,
      sqs: sqs.sqs,
      queueUrl: queue.url,
      env: {},
      schema,
      logger,
      timeoutMarginMs: MARGIN_MS,
      retry: {
        random: () => 0,
        now: () => Date.now() + slept,
        sleep: async (ms: number) => {
          waits.push(ms);
          slept += ms;
        },
      },
    });
    const { context } = lambdaContext(MARGIN_MS + 3_500);

    // Act
    let error: unknown;
    try {
      error = await handler(event, context).catch((thrown: unknown) => thrown);
    } finally {
      await unreachable.end();
    }

    // Assess: 'start job' retried after 1 s and 2 s, not after 4 s (3 s + 4 s > 3.5 s). The
    // failure record, with 5 s more, then gets the same two retries and also fails.
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ operation: 'start job', sqlState: undefined, cause: { code: 'ECONNREFUSED' } });
    const warnings = lines.filter((line) => line.startsWith('warn '));
    expect(warnings.filter((line) => line.includes('start job failed'))).toEqual([
      expect.stringContaining('start job failed, retry 1 of 3'),
      expect.stringContaining('start job failed, retry 2 of 3'),
    ]);
    expect(warnings.filter((line) => line.includes('mark job error failed'))).toHaveLength(2);
    expect(waits).toEqual([1_000, 2_000, 1_000, 2_000]);
    expect(database.calls.filter((call) => call === 'connect')).toHaveLength(6);
    expect(lines.some((line) => line.startsWith('error could not mark the job as error'))).toBe(true);
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Staged);
    expect(await queue.messagesLeft()).toBe(1);
  });
});
