import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OrcaStatus, createHandler, generateReports } from '../../src/index.js';
import { archiveCounts, seedArchive } from '../helpers/archive.js';
import { StatesError, runStateMachine } from '../helpers/asl.js';
import { libraryPool, usingPostgres, useOrcaSchema } from '../helpers/database.js';
import { holdAdvisoryLock, installPausePoint, newPauseKey, waitForLockWait } from '../helpers/faults.js';
import { REPORT_TABLES, asMultisets } from '../helpers/load-dataset.js';
import { readJob, readReports } from '../helpers/rows.js';

const BUCKET = 'lp-daac-orca-primary';
const MACHINE = JSON.parse(readFileSync(new URL('../../examples/step-functions/state-machine.asl.json', import.meta.url), 'utf8'));

/** Runs one invocation in a child process; resolves to its output, rejects as a dead container does. */
function invokeInChild(payload: unknown, env: Record<string, string>, started: (child: ChildProcess) => void): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/lambda-child.ts', JSON.stringify(payload)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(JSON.parse(out));
      const error = new Error(signal ? `the container was killed (${signal})` : `the container failed: ${err.trim().split('\n').at(-1) ?? ''}`);
      // What Step Functions reports for a Lambda whose sandbox died.
      error.name = signal ? 'Lambda.Unknown' : 'Error';
      reject(error);
    });
  });
}

describe('the Step Functions example runs a pieced job: plan, pieces on three workers, finish', () => {
  const { database: t, schema, sqs, addPool } = useOrcaSchema({
    prefix: 'orca_step_functions',
    buckets: [BUCKET],
    sqs: true,
    emptyTablesBeforeEach: true,
    serverOnly: true,
  });
  const s = `"${schema}"`;

  it.runIf(usingPostgres)('one worker killed mid-piece: the piece is retried elsewhere, every other piece runs once, the reports are exact', async () => {
    // Prepare: a job, its message, and the reports the single statement writes.
    const jobId = await seedArchive(t, schema, BUCKET, 6000);
    await generateReports(t.db, { jobId, orcaArchiveLocation: BUCKET }, { schema });
    const expected = asMultisets(await readReports(t, schema, jobId));
    for (const table of REPORT_TABLES) await t.query(`DELETE FROM ${s}.${table} WHERE job_id = $1`, [jobId]);
    const queue = await sqs.createQueue();
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
    const input = { event: { jobId, orcaArchiveLocation: BUCKET, messageReceiptHandle: message.receiptHandle } };

    // Three containers in this process, each with its own pool, and one more that is killed.
    const workers = [1, 2, 3].map((n) =>
      createHandler({
        database: addPool(libraryPool(`orca-reconcile-worker-${n}`)),
        sqs: sqs.sqs,
        queueUrl: queue.url,
        env: {},
        schema,
        pieces: 8,
        retry: { maxRetries: 0 },
      }),
    );
    const idle = [...workers];
    const KILLED_PIECE = 5;
    const pause = newPauseKey();
    const dropPause = await installPausePoint(t, schema, 'killed_piece', { table: 'orca_reconcile_piece', event: 'INSERT', when: `NEW.piece = ${KILLED_PIECE}` }, pause);
    const held = await holdAdvisoryLock(pause);
    let child: ChildProcess | undefined;
    const invocations: string[] = [];

    const invoke = async (payload: unknown): Promise<unknown> => {
      const { step, piece } = payload as { step: string; piece?: number };
      invocations.push(piece === undefined ? step : `${step} ${piece}`);
      if (step === 'piece' && piece === KILLED_PIECE && !child) {
        return invokeInChild(
          payload,
          { DATABASE_URL: process.env.DATABASE_URL!, ORCA_SCHEMA: schema, QUEUE_URL: queue.url, SQS_ENDPOINT: sqs.endpoint },
          (started) => (child = started),
        );
      }
      const worker = idle.pop();
      if (!worker) throw new Error('more invocations at once than workers');
      try {
        return await worker(payload);
      } finally {
        idle.push(worker);
      }
    };

    // Act: the state machine as written, with the Map capped at the three workers.
    const running = runStateMachine(MACHINE, input, { invoke, maxConcurrency: 3 });
    try {
      const waiting = await waitForLockWait(t, 'orca-reconcile-lambda-child', pause, { timeoutMs: 60_000 });
      expect(waiting.pid).toBeGreaterThan(0);
      child!.kill('SIGKILL');
    } finally {
      await held.release();
      await dropPause();
    }
    const output = await running;

    // Assess
    // The machine's output is the finish step's: what ORCA's reconcile step returns.
    expect(output).toEqual({ jobId, ...archiveCounts(6000) });
    const pieceCalls = invocations.filter((call) => call.startsWith('piece'));
    expect(pieceCalls.filter((call) => call === `piece ${KILLED_PIECE}`)).toHaveLength(2);
    expect(new Set(pieceCalls).size).toBe(8);
    expect(pieceCalls).toHaveLength(9);
    expect(invocations.filter((call) => !call.startsWith('piece'))).toEqual(['plan', 'finish']);
    expect(asMultisets(await readReports(t, schema, jobId))).toEqual(expected);
    expect(await readReports(t, schema, jobId).then((r) => ({ phantoms: r.phantoms.length, orphans: r.orphans.length, mismatches: r.mismatches.length }))).toEqual(archiveCounts(6000));
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Success);
    expect(await queue.messagesLeft()).toBe(0);
    const recorded = await t.query<{ piece: number }>(
      `SELECT piece FROM ${s}.orca_reconcile_piece p JOIN ${s}.orca_reconcile_run r ON r.id = p.run_id WHERE r.job_id = $1 ORDER BY piece`,
      [jobId],
    );
    expect(recorded.map((row) => row.piece)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const worker of workers) await worker.close();
  });

  it.runIf(usingPostgres)('a refused plan leaves the job as it was; a failure after it is recorded by the Fail job step', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 100);
    const queue = await sqs.createQueue();
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
    const worker = createHandler({ database: addPool(libraryPool('orca-reconcile-worker-f')), sqs: sqs.sqs, queueUrl: queue.url, env: {}, schema, pieces: 2, retry: { maxRetries: 0 } });
    const input = { event: { jobId, orcaArchiveLocation: BUCKET, messageReceiptHandle: message.receiptHandle } };

    // A newer job of the bucket: the plan refuses, and the job stays staged.
    const newer = (await t.query<{ id: string }>(
      `INSERT INTO ${s}.reconcile_job (orca_archive_location, status_id, inventory_creation_time, start_time, last_update)
       VALUES ($1, 1, now(), now(), now()) RETURNING id`, [BUCKET])).at(0)!;
    const refused = await runStateMachine(MACHINE, input, { invoke: (payload) => worker(payload as never) }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StatesError);
    expect((refused as StatesError).error).toBe('ReconcileFailed');
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Staged);

    // Without the newer job, a piece that fails for good: the Fail job step marks the job error.
    await t.query(`DELETE FROM ${s}.reconcile_job WHERE id = $1`, [newer.id]);
    const failing = (payload: unknown) => {
      const { step } = payload as { step: string };
      if (step === 'piece') return Promise.reject(Object.assign(new Error('the piece broke'), { name: 'PieceBroke' }));
      return worker(payload as never);
    };
    const failed = await runStateMachine(MACHINE, input, { invoke: failing }).catch((error: unknown) => error);
    expect((failed as StatesError).error).toBe('ReconcileFailed');
    const job = await readJob(t, schema, jobId);
    expect(job.status_id).toBe(OrcaStatus.Error);
    expect(job.error_message).toBe('PieceBroke: the piece broke');
    expect(await queue.messagesLeft()).toBe(1);
    await worker.close();
  });
});
