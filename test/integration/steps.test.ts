import { describe, expect, it } from 'vitest';
import {
  type FailStepOutput,
  type FinishStepOutput,
  InvalidInputError,
  OrcaStatus,
  type PieceStepOutput,
  type PlanStepOutput,
  RunNotReadyError,
  createHandler,
  taskStep,
} from '../../src/index.js';
import { openRun } from '../../src/pieces.js';
import { quoteSchema } from '../../src/sql/schema.js';
import { archiveCounts, seedArchive } from '../helpers/archive.js';
import { useOrcaSchema } from '../helpers/database.js';
import { noWait } from '../helpers/faults.js';
import { readJob, readReports } from '../helpers/rows.js';

const BUCKET = 'lp-daac-orca-primary';

describe('taskStep: one step of a pieced job per call', () => {
  const { database: t, schema, sqs } = useOrcaSchema({ prefix: 'orca_steps', buckets: [BUCKET], sqs: true, emptyTablesBeforeEach: true });
  const s = `"${schema}"`;

  it('plan, every piece, finish: the job goes staged → generating reports → success, the message is deleted', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 700);
    const queue = await sqs.createQueue();
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
    const job = { jobId, orcaArchiveLocation: BUCKET, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle };
    const dependencies = { database: t.db, sqs: sqs.sqs, schema, pieces: 5, retry: noWait };

    const plan = (await taskStep({ ...job, step: 'plan' }, dependencies)) as PlanStepOutput;
    expect(plan).toEqual({ step: 'plan', jobId, runId: expect.any(Number), pieces: [1, 2, 3, 4, 5], resumed: false, finished: false });
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.GeneratingReports);

    const outputs = [] as PieceStepOutput[];
    const logged: Record<string, unknown>[] = [];
    const logger = { debug: () => undefined, warn: () => undefined, error: () => undefined, info: (message: string, fields?: Record<string, unknown>) => message === 'piece finished' && logged.push(fields!) };
    for (const piece of plan.pieces) outputs.push((await taskStep({ ...job, step: 'piece', runId: plan.runId!, piece }, { ...dependencies, logger })) as PieceStepOutput);
    // One info line per piece: the job, the piece, the total, the rows written, the duration.
    expect(logged.map((fields) => [fields['jobId'], fields['piece'], fields['pieces']])).toEqual(plan.pieces.map((piece) => [jobId, piece, 5]));
    expect(logged.map((fields) => fields['rows'])).toEqual(outputs.map((output) => output.phantoms + output.orphans + output.mismatches));
    expect(logged.every((fields) => typeof fields['durationMs'] === 'number')).toBe(true);
    const again = (await taskStep({ ...job, step: 'piece', runId: plan.runId!, piece: 3 }, dependencies)) as PieceStepOutput;
    expect(again).toMatchObject({ piece: 3, alreadyDone: true, phantoms: 0 });
    const expected = archiveCounts(700);
    expect(outputs.reduce((sum, output) => sum + output.phantoms + output.orphans + output.mismatches, 0)).toBe(
      expected.phantoms + expected.orphans + expected.mismatches,
    );
    // Readers still see no reports: they arrive with the finish.
    expect(await readReports(t, schema, jobId)).toEqual({ phantoms: [], orphans: [], mismatches: [] });

    const finished = (await taskStep({ ...job, step: 'finish', runId: plan.runId }, dependencies)) as FinishStepOutput;
    expect(finished).toEqual({ step: 'finish', jobId, ...expected });
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Success);
    expect(await queue.messagesLeft()).toBe(0);

    // A retried finish (the state machine retries after a timeout) returns the same counts.
    expect(await taskStep({ ...job, step: 'finish', runId: plan.runId }, { ...dependencies, sqs: sqs.sqs })).toEqual(finished);
    // A plan after success plans nothing: the job is not run again.
    expect(await taskStep({ ...job, step: 'plan' }, dependencies)).toEqual({ step: 'plan', jobId, runId: null, pieces: [], resumed: false, finished: true });
  });

  it("'auto' on a small bucket plans no run; finish with runId null runs the single statement", async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 200);
    const job = { jobId, orcaArchiveLocation: BUCKET };
    const plan = (await taskStep({ ...job, step: 'plan' }, { database: t.db, schema })) as PlanStepOutput;
    expect(plan).toEqual({ step: 'plan', jobId, runId: null, pieces: [], resumed: false, finished: false });
    expect(await taskStep({ ...job, step: 'finish', runId: null }, { database: t.db, schema })).toEqual({ step: 'finish', jobId, ...archiveCounts(200) });
    expect(await t.query(`SELECT 1 FROM ${s}.orca_reconcile_run`)).toEqual([]);
  });

  it('a plan after a stopped one gives only the pieces left; a finish before all pieces is refused and marks the job error', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 300);
    const job = { jobId, orcaArchiveLocation: BUCKET };
    const dependencies = { database: t.db, schema, pieces: 4, retry: noWait };
    const plan = (await taskStep({ ...job, step: 'plan' }, dependencies)) as PlanStepOutput;
    await taskStep({ ...job, step: 'piece', runId: plan.runId!, piece: 2 }, dependencies);
    const replanned = (await taskStep({ ...job, step: 'plan' }, dependencies)) as PlanStepOutput;
    expect(replanned).toEqual({ step: 'plan', jobId, runId: plan.runId, pieces: [1, 3, 4], resumed: true, finished: false });

    const early = taskStep({ ...job, step: 'finish', runId: plan.runId }, dependencies);
    await expect(early).rejects.toBeInstanceOf(RunNotReadyError);
    await expect(early).rejects.toThrow(`run ${plan.runId} of reconcile_job ${jobId} has 1 of 4 pieces finished`);
    const failed = await readJob(t, schema, jobId);
    expect(failed.status_id).toBe(OrcaStatus.Error);
    expect(failed.error_message).toContain('has 1 of 4 pieces finished');
  });

  it("a piece before the plan's copies is refused: a plan that died after making its run", async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 100);
    const scope = { database: t.db, jobId, orcaArchiveLocation: BUCKET, schema: quoteSchema(schema) };
    const opened = await openRun(scope, async () => 3);
    const piece = taskStep({ jobId, orcaArchiveLocation: BUCKET, step: 'piece', runId: opened!.run.runId, piece: 1 }, { database: t.db, schema });
    await expect(piece).rejects.toBeInstanceOf(RunNotReadyError);
    await expect(piece).rejects.toThrow('is not planned yet: its catalog and listing are still to be copied');
    // The plan, run again, copies and gives every piece.
    const plan = (await taskStep({ jobId, orcaArchiveLocation: BUCKET, step: 'plan' }, { database: t.db, schema, pieces: 3 })) as PlanStepOutput;
    expect(plan).toMatchObject({ runId: opened!.run.runId, pieces: [1, 2, 3], resumed: true });
  });

  it('fail marks a job that is generating reports, with the Catch output as its message; a staged job is left alone', async () => {
    const started = await seedArchive(t, schema, BUCKET, 50);
    await taskStep({ jobId: started, orcaArchiveLocation: BUCKET, step: 'plan' }, { database: t.db, schema, pieces: 2 });
    const catchOutput = { Error: 'DatabaseError', Cause: JSON.stringify({ errorType: 'DatabaseError', errorMessage: 'piece 2 failed: connection lost' }) };
    const marked = (await taskStep({ jobId: started, orcaArchiveLocation: BUCKET, step: 'fail', error: catchOutput }, { database: t.db, schema })) as FailStepOutput;
    expect(marked).toEqual({ step: 'fail', jobId: started, marked: true, error: 'DatabaseError: piece 2 failed: connection lost' });
    expect(await readJob(t, schema, started)).toMatchObject({ status_id: OrcaStatus.Error, error_message: 'DatabaseError: piece 2 failed: connection lost' });

    await t.exec(`DELETE FROM ${s}.reconcile_s3_object`);
    const staged = await seedArchive(t, schema, BUCKET, 10);
    const left = (await taskStep({ jobId: staged, orcaArchiveLocation: BUCKET, step: 'fail', error: catchOutput }, { database: t.db, schema })) as FailStepOutput;
    expect(left.marked).toBe(false);
    expect((await readJob(t, schema, staged)).status_id).toBe(OrcaStatus.Staged);
  });

  it('a bad step is an InvalidInputError naming the field, before any statement', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 10);
    const job = { jobId, orcaArchiveLocation: BUCKET };
    const cases: [unknown, RegExp][] = [
      [{ ...job, step: 'copy' }, /step must be 'plan', 'piece', 'finish' or 'fail', got "copy"/],
      [{ ...job, step: 'piece', runId: 1 }, /piece must be a whole number from 1 to 1024, got undefined/],
      [{ ...job, step: 'piece', runId: 'x', piece: 1 }, /runId/],
      [{ ...job, step: 'finish' }, /runId/],
    ];
    for (const [input, message] of cases) {
      const call = taskStep(input as never, { database: t.db, schema });
      await expect(call).rejects.toBeInstanceOf(InvalidInputError);
      await expect(call).rejects.toThrow(message);
    }
    expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Staged);
  });

  it('the handler runs a step event and refuses a bad step field; a bad pieces option fails createHandler', async () => {
    const jobId = await seedArchive(t, schema, BUCKET, 100);
    const queue = await sqs.createQueue();
    const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: BUCKET });
    const handler = createHandler({ database: t.db, sqs: sqs.sqs, queueUrl: queue.url, env: {}, schema, pieces: 2 });
    const event = { event: { jobId, orcaArchiveLocation: BUCKET, messageReceiptHandle: message.receiptHandle } };
    const plan = await handler({ ...event, step: 'plan' });
    expect(plan).toMatchObject({ step: 'plan', pieces: [1, 2] });
    await expect(handler({ ...event, step: 'piece', runId: (plan as PlanStepOutput).runId!, piece: 0 })).rejects.toThrow(/piece must be a whole number/);
    expect(() => createHandler({ pieces: 0 })).toThrow(/pieces must be 'auto' or a whole number from 1 to 1024/);
    await handler.close();
  });
});
