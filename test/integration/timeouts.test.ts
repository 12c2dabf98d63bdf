import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { DatabaseError, OrcaStatus, TimeoutError, createHandler, type HandlerOptions } from '../../src/index.js';
import { libraryPool, useOrcaSchema, usingPostgres } from '../helpers/database.js';
import {
  closedLoopbackPort,
  holdAdvisoryLock,
  installReportGate,
  jobLockKey,
  recordedBackoff,
  reportGateKey,
  spreadJobIds,
  waitForLockWait,
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
    'cuts off the wait for a job lock another session holds, then marks the job error once the lock is free',
    async () => {
      // Prepare: another session holds the job's lock when the run starts.
      const queue = await sqs.createQueue();
      const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
      const holder = await holdAdvisoryLock(jobLockKey(jobId));
      const { handler, lines } = handlerFor(queue, library!);
      const { endsAt, context } = lambdaContext(MARGIN_MS + BUDGET_MS);
      const startedAt = Date.now();

      // Act: the run waits for the lock ('start job'), is cut off at the deadline, and waits for
      // the lock again to record the failure; the holder lets go only then.
      const outcome = handler(event, context).catch((thrown: unknown) => thrown);
      let error: unknown;
      try {
        const jobLock = jobLockKey(jobId);
        const first = await waitForLockWait(t, applicationName, jobLock);
        await waitForLockWait(t, applicationName, jobLock, { startedAfter: first.xact_start });
        expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Staged);
      } finally {
        await holder.release();
        error = await outcome;
      }
      const settledAt = Date.now();

      // Assess
      expect(error).toBeInstanceOf(TimeoutError);
      const timeout = error as TimeoutError;
      expect(timeout.message).toMatch(/^start job timed out after 1\.[5-7] s \(time budget 1\.[45] s\)$/);
      expect(['57014', '55P03']).toContain((timeout.cause as { code?: string }).code);
      expect(settledAt).toBeLessThan(endsAt);
      expect(settledAt - startedAt).toBeGreaterThanOrEqual(BUDGET_MS - 50);

      const job = await readJob(t, schema, jobId);
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
    'still returns before the invocation ends when even the failure record cannot get the job lock',
    async () => {
      // Prepare: another session holds the job's lock for the whole invocation.
      const queue = await sqs.createQueue();
      const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
      const holder = await holdAdvisoryLock(jobLockKey(jobId));
      const { handler, lines } = handlerFor(queue, library!);
      const { endsAt, context } = lambdaContext(MARGIN_MS + BUDGET_MS);
      const startedAt = Date.now();

      // Act
      let error: unknown;
      try {
        error = await handler(event, context).catch((thrown: unknown) => thrown);
      } finally {
        await holder.release();
      }
      const settledAt = Date.now();

      // Assess: the budget (1.5 s) plus the failure record's own 5 s, inside the 7.5 s invocation.
      expect(error).toBeInstanceOf(TimeoutError);
      const timeout = error as TimeoutError;
      expect(timeout.message).toMatch(/^start job timed out after 1\.[5-7] s/);
      expect(settledAt - startedAt).toBeGreaterThanOrEqual(BUDGET_MS + 5_000 - 100);
      expect(settledAt).toBeLessThan(endsAt);

      // The job is as the loader left it: never 'generating reports', and nothing committed.
      const job = await readJob(t, schema, jobId);
      expect(job.status_id).toBe(OrcaStatus.Staged);
      expect(job.end_time).toBeNull();
      expect(await readStatusTrail(t, schema, jobId)).toEqual([]);
      const failed = lines.find((line) => line.startsWith('error could not mark the job as error'));
      expect(failed).toBeDefined();
      const fields = JSON.parse(failed!.slice('error could not mark the job as error '.length)) as Record<string, unknown>;
      expect(fields).toMatchObject({ jobId, error: timeout.message });
      expect(String(fields['statusUpdateError'])).toMatch(/lock timeout|statement timeout/);
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
