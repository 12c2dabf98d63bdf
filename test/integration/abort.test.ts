import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { AbortError, InvalidInputError, OrcaStatus, generateReports, readReport, task } from '../../src/index.js';
import { libraryPool, useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { countLockWaiters, holdAdvisoryLock, installReportGate, noWait, reportGateKey, track, waitForLockWaiters } from '../helpers/faults.js';
import { insertJob, insertReportRows, readJob, readReports, reportRow, seedOneOfEachReport, snapshotReconcileTables } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
const noReports = { phantoms: [], orphans: [], mismatches: [] };

describe('cancelling with an AbortSignal', () => {
  const { database: t, schema, sqs, addPool } = useOrcaSchema({ prefix: 'orca_abort', buckets: [BUCKET], sqs: true, emptyTablesBeforeEach: true });
  const applicationName = `orca-abort-${process.pid}`;
  let library: pg.Pool | undefined;

  beforeAll(async () => {
    if (!usingPostgres) return;
    await installReportGate(t, schema);
    library = addPool(libraryPool(applicationName));
  });

  /** The library pool's sessions as the server sees them: state and what they are running. */
  const librarySessions = async () =>
    t.query<{ state: string; query: string; wait_event_type: string | null }>(
      'SELECT state, query, wait_event_type FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid',
      [applicationName],
    );

  it('refuses to start with a signal that is already aborted, writing nothing', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobId, BUCKET);
    const before = await snapshotReconcileTables(t, schema);
    const controller = new AbortController();
    controller.abort(new Error('shutting down'));

    // Act
    const errors = await Promise.all([
      generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema, signal: controller.signal }).catch((e: unknown) => e),
      task({ jobId, orcaArchiveLocation: BUCKET }, { database: t.db, schema, signal: controller.signal }).catch((e: unknown) => e),
    ]);

    // Assess
    for (const error of errors) {
      expect(error).toBeInstanceOf(AbortError);
      expect(error).toMatchObject({ name: 'AbortError', code: 'ABORTED' });
      expect((error as Error).message).toContain('shutting down');
      expect((error as Error).cause).toEqual(new Error('shutting down'));
    }
    expect(await snapshotReconcileTables(t, schema)).toEqual(before);
  });

  it('refuses a signal that is not an AbortSignal', async () => {
    // Act
    const error = await generateReports(t.db, { jobId: 1, orcaArchiveLocation: BUCKET }, { schema, signal: {} as AbortSignal }).catch(
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ field: 'signal' });
  });

  it.runIf(usingPostgres)(
    'cancels the running report statement on the server, rolls back, releases the connection and marks the job error',
    async () => {
      // Prepare: the report statement stops at the gate, inside the server, until the test lets it go.
      const jobId = await insertJob(t, schema, BUCKET);
      await seedOneOfEachReport(t, schema, jobId, BUCKET);
      const queue = await sqs.createQueue({ fifo: true });
      const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
      const controller = new AbortController();
      const gate = await holdAdvisoryLock(reportGateKey(jobId));
      let error: unknown;
      let waitingAfterAbort: number;
      let sessions: Awaited<ReturnType<typeof librarySessions>>;
      try {
        const run = track(
          task(
            { jobId, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle },
            { database: library!, sqs: sqs.sqs, schema, retry: noWait, signal: controller.signal },
          ).catch((e: unknown) => e),
        );
        await waitForLockWaiters(t, reportGateKey(jobId), 1);
        expect((await librarySessions()).some((session) => session.state === 'active' && session.wait_event_type === 'Lock')).toBe(true);

        // Act: abort while the gate still holds the statement.
        controller.abort();
        error = await run.promise;
        waitingAfterAbort = await countLockWaiters(t, reportGateKey(jobId));
        sessions = await librarySessions();
      } finally {
        await gate.release();
      }

      // Assess: the statement is gone from the server, and no session is left in a transaction.
      expect(error).toBeInstanceOf(AbortError);
      expect(error).toMatchObject({ name: 'AbortError', code: 'ABORTED' });
      expect(waitingAfterAbort).toBe(0);
      expect(sessions.every((session) => session.state === 'idle')).toBe(true);
      expect(library!.totalCount - library!.idleCount).toBe(0);
      const job = await readJob(t, schema, jobId);
      expect(job.status_id).toBe(OrcaStatus.Error);
      expect(job.error_message).toMatch(/^generate reports was aborted/);
      expect(await readReports(t, schema, jobId)).toEqual(noReports);
      expect(await queue.messagesLeft()).toBe(1);
    },
  );

  it.runIf(usingPostgres)('stops a report read between rows and ends its transaction on the server', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, BUCKET);
    await insertReportRows(t, schema, 'orphan', Array.from({ length: 20 }, (_unused, index) => reportRow('orphan', jobId, index)));
    const controller = new AbortController();
    const read: string[] = [];

    // Act
    let error: unknown;
    try {
      for await (const row of readReport(library!, { jobId, kind: 'orphan' }, { schema, batchSize: 5, signal: controller.signal })) {
        read.push(row.keyPath);
        if (read.length === 3) controller.abort();
      }
    } catch (thrown) {
      error = thrown;
    }

    // Assess
    expect(error).toBeInstanceOf(AbortError);
    expect(read).toHaveLength(3);
    expect((await librarySessions()).every((session) => session.state === 'idle')).toBe(true);
    expect(library!.totalCount - library!.idleCount).toBe(0);
  });
});
