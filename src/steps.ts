import { InvalidInputError, JobNotFoundError, isRefusal, messageOf } from './errors.js';
import { jobTransaction } from './guard.js';
import { selectJobSql } from './sql/jobs.js';
import { publishRunMetrics } from './metrics.js';
import { copyBothSides } from './copy.js';
import { autoPieces, dropStaleStaging, missingPieces, openRun, runOnePiece } from './pieces.js';
import type { ReportCounts } from './reports.js';
import { OrcaStatus } from './status.js';
import {
  type Run,
  type TaskDependencies,
  type TaskInput,
  deleteMessage,
  finishJob,
  markFailed,
  prepareRun,
  publishFailure,
  startJob,
  where,
} from './task.js';
import { describe, isPlainObject, validateJobId } from './validation.js';

/**
 * One step of a job reconciled in pieces across hosts, as a Step Functions state machine runs
 * it: `plan` (checks the job, marks it `generating reports`, copies the catalog and listing),
 * one `piece` per Map item, `finish` (moves the reports in, marks the job `success`, deletes the
 * message), and `fail` for a Catch (marks the job `error`).
 *
 * @example
 * ```ts
 * import { taskStep, type TaskStep } from 'orca-reconcile';
 *
 * const step: TaskStep = { step: 'piece', runId: 7, piece: 3 };
 * await taskStep({ jobId: 42, orcaArchiveLocation: 'prefix-orca-primary', ...step }, { database: pool });
 * ```
 * @category Reconcile
 */
export type TaskStep =
  | { step: 'plan' }
  | { step: 'piece'; runId: number; piece: number }
  | { step: 'finish'; runId: number | null }
  | { step: 'fail'; error?: unknown };

/**
 * What {@link taskStep} works on: the job (and for `finish`, its message) and the step.
 *
 * @example
 * ```ts
 * import type { TaskStepInput } from 'orca-reconcile';
 *
 * const finish: TaskStepInput = { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary', queueUrl, messageReceiptHandle, step: 'finish', runId: 7 };
 * ```
 * @category Reconcile
 */
export type TaskStepInput = TaskInput & TaskStep;

/**
 * What each step of {@link taskStep} returns. `plan` gives the pieces still to do (the Map's
 * items) and the run id the later steps take; `runId` is null when `'auto'` chose the single
 * statement, which `finish` then runs.
 *
 * @example
 * ```ts
 * import { taskStep, type PlanStepOutput } from 'orca-reconcile';
 *
 * const plan = (await taskStep({ jobId: 42, orcaArchiveLocation: 'prefix-orca-primary', step: 'plan' }, { database: pool, pieces: 'auto' })) as PlanStepOutput;
 * console.log(`run ${plan.runId}: ${plan.pieces.length} pieces to do`);
 * ```
 * @category Reconcile
 */
export interface PlanStepOutput {
  step: 'plan';
  jobId: number;
  runId: number | null;
  /** Pieces still to do, in order: the items of the Map state. Empty for the single statement. */
  pieces: number[];
  /** Whether the plan continues an unfinished run of the job. */
  resumed: boolean;
  /** Whether the job was `success` already: then `finish` only deletes the message. */
  finished: boolean;
}

/**
 * What a `piece` step returns.
 *
 * @example
 * ```ts
 * import type { PieceStepOutput } from 'orca-reconcile';
 *
 * const done = (output: PieceStepOutput) => console.log(`piece ${output.piece}: ${output.phantoms + output.orphans + output.mismatches} rows`);
 * ```
 * @category Reconcile
 */
export interface PieceStepOutput extends ReportCounts {
  step: 'piece';
  jobId: number;
  runId: number;
  piece: number;
  durationMs: number;
  /** True when an earlier invocation had finished the piece: nothing was done again. */
  alreadyDone: boolean;
}

/**
 * What a `finish` step returns: the job's report counts, as {@link task} returns them.
 *
 * @example
 * ```ts
 * import type { FinishStepOutput } from 'orca-reconcile';
 *
 * const log = ({ jobId, phantoms }: FinishStepOutput) => console.log(`job ${jobId}: ${phantoms} phantoms`);
 * ```
 * @category Reconcile
 */
export interface FinishStepOutput extends ReportCounts {
  step: 'finish';
  jobId: number;
}

/**
 * What a `fail` step returns: whether the job was marked `error` (it is left alone unless it is
 * `generating reports`), and the message recorded.
 *
 * @example
 * ```ts
 * import type { FailStepOutput } from 'orca-reconcile';
 *
 * const log = (output: FailStepOutput) => console.log(output.marked ? `job ${output.jobId} marked error` : 'job left as it was');
 * ```
 * @category Reconcile
 */
export interface FailStepOutput {
  step: 'fail';
  jobId: number;
  marked: boolean;
  error: string;
}

/**
 * The output of any {@link taskStep}.
 *
 * @example
 * ```ts
 * import type { TaskStepOutput } from 'orca-reconcile';
 *
 * const describeStep = (output: TaskStepOutput) => (output.step === 'plan' ? `${output.pieces.length} pieces` : output.step);
 * ```
 * @category Reconcile
 */
export type TaskStepOutput = PlanStepOutput | PieceStepOutput | FinishStepOutput | FailStepOutput;

/** Reads and checks the step of an input: `step` and the fields it needs. */
export function parseStep(value: Record<string, unknown>): TaskStep {
  const step = value['step'];
  const runIdOf = (nullable: boolean): number | null => {
    const runId = value['runId'];
    if (runId === null && nullable) return null;
    return validateJobId(runId, 'runId');
  };
  switch (step) {
    case 'plan':
      return { step };
    case 'piece': {
      const runId = runIdOf(false) as number;
      const piece = value['piece'];
      if (typeof piece !== 'number' || !Number.isInteger(piece) || piece < 1 || piece > 1024) {
        throw new InvalidInputError('piece', `piece must be a whole number from 1 to 1024, got ${describe(piece)}`);
      }
      return { step, runId, piece };
    }
    case 'finish':
      return { step, runId: runIdOf(true) };
    case 'fail':
      return { step, error: value['error'] };
    default:
      throw new InvalidInputError('step', `step must be 'plan', 'piece', 'finish' or 'fail', got ${describe(step)}`);
  }
}

/** The message of a Step Functions Catch output (`{ Error, Cause }`), or of anything else. */
function failureMessage(error: unknown): string {
  if (isPlainObject(error) && (typeof error['Error'] === 'string' || typeof error['Cause'] === 'string')) {
    const cause = typeof error['Cause'] === 'string' ? error['Cause'] : '';
    let message = cause;
    try {
      const parsed = JSON.parse(cause) as unknown;
      if (isPlainObject(parsed) && typeof parsed['errorMessage'] === 'string') message = parsed['errorMessage'];
    } catch {
      // The cause is plain text.
    }
    return [error['Error'], message].filter((part) => typeof part === 'string' && part !== '').join(': ');
  }
  return error === undefined ? 'a step of the run failed' : messageOf(error);
}

/**
 * Runs one step of a job reconciled in pieces, so that a Step Functions state machine can spread
 * the pieces over many Lambda invocations (a Map state with a concurrency limit) and retry each.
 * The steps share {@link task}'s guarantees: every step checks the job and its listing, a
 * refusal before `plan` started the job changes nothing, finished pieces are never redone, and
 * readers see the job's earlier reports until `finish` commits.
 *
 * - `plan`: checks the job and marks it `generating reports`, then makes the run (or continues
 *   the job's unfinished one) and copies the catalog and listing. `pieces` (default `'auto'`)
 *   and `concurrency` (for the two copies) come from the dependencies.
 * - `piece`: compares one piece. A piece finished before returns `alreadyDone`; a piece another
 *   invocation holds is waited for.
 * - `finish`: moves the rows in and marks the job `success` in one transaction, drops the
 *   staging tables and deletes the message.
 * - `fail`: marks a job that is `generating reports` as `error` with the failure's message.
 *
 * A failure of `plan` or `finish` after the job was started marks it `error`, as {@link task}
 * does; a failed `piece` leaves the job to the state machine's retries and its `fail` step.
 *
 * @example
 * ```ts
 * import { taskStep, type PlanStepOutput } from 'orca-reconcile';
 *
 * const job = { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' };
 * const plan = (await taskStep({ ...job, step: 'plan' }, { database: pool, pieces: 'auto' })) as PlanStepOutput;
 * await Promise.all(plan.pieces.map((piece) => taskStep({ ...job, step: 'piece', runId: plan.runId!, piece }, { database: pool })));
 * console.log(await taskStep({ ...job, step: 'finish', runId: plan.runId }, { database: pool }));
 * ```
 * @category Reconcile
 */
export async function taskStep(input: TaskStepInput, dependencies: TaskDependencies): Promise<TaskStepOutput> {
  if (!isPlainObject(input)) throw new InvalidInputError('input', `input must be an object with jobId, orcaArchiveLocation and step, got ${describe(input)}`);
  const step = parseStep(input);
  const run = await prepareRun(input, dependencies);
  switch (step.step) {
    case 'plan':
      return plan(run);
    case 'piece':
      return piece(run, step.runId, step.piece);
    case 'finish':
      return finish(run, step.runId);
    case 'fail':
      return fail(run, step.error);
  }
}

function scopeOf(run: Run) {
  return { ...run.job, database: run.database, logger: run.logger };
}

async function plan(run: Run): Promise<PlanStepOutput> {
  const { jobId, schema, orcaArchiveLocation } = run.job;
  let started = false;
  try {
    const stored = await startJob(run);
    if (stored) return { step: 'plan', jobId, runId: null, pieces: [], resumed: false, finished: true };
    started = true;
    const scope = scopeOf(run);
    const pieces = run.pieces ?? 'auto';
    const opened = await openRun(scope, (tx) => (pieces === 'auto' ? autoPieces(tx, schema, orcaArchiveLocation) : Promise.resolve(pieces)));
    if (!opened) return { step: 'plan', jobId, runId: null, pieces: [], resumed: false, finished: false };
    const copied = await copyBothSides(scope, opened.run, run.concurrency);
    const todo = await missingPieces(scope, copied);
    run.logger.info(opened.resumed ? 'run resumed' : 'run planned', {
      ...where(run),
      runId: copied.runId,
      pieces: copied.pieces,
      piecesDone: copied.pieces - todo.length,
      files: (copied.catalogFiles ?? 0) + (copied.listingFiles ?? 0),
    });
    return { step: 'plan', jobId, runId: copied.runId, pieces: todo, resumed: opened.resumed, finished: false };
  } catch (error) {
    await recordFailure(run, error, started);
    throw error;
  }
}

async function piece(run: Run, runId: number, pieceNumber: number): Promise<PieceStepOutput> {
  const { jobId } = run.job;
  const result = await runOnePiece(scopeOf(run), runId, pieceNumber);
  if (result === 'done') {
    return { step: 'piece', jobId, runId, piece: pieceNumber, phantoms: 0, orphans: 0, mismatches: 0, durationMs: 0, alreadyDone: true };
  }
  const { phantoms, orphans, mismatches, durationMs, pieces } = result;
  run.logger.info('piece finished', { jobId, runId, piece: pieceNumber, pieces, rows: phantoms + orphans + mismatches, durationMs });
  return { step: 'piece', jobId, runId, piece: pieceNumber, phantoms, orphans, mismatches, durationMs, alreadyDone: false };
}

async function finish(run: Run, runId: number | null): Promise<FinishStepOutput> {
  let counts: ReportCounts;
  try {
    ({ counts } = await finishJob(run, runId));
  } catch (error) {
    await recordFailure(run, error, true);
    throw error;
  }
  await dropStaleStaging(scopeOf(run), run.job.deadline);
  try {
    await deleteMessage(run);
  } catch (error) {
    publishFailure(run, error);
    throw error;
  }
  run.logger.info('reconciliation finished', { ...where(run), ...counts, runId });
  publishRunMetrics(run.metrics, run.logger, {
    outcome: 'success',
    orcaArchiveLocation: run.job.orcaArchiveLocation,
    ...counts,
    durationMs: Date.now() - run.startedAt,
  });
  return { step: 'finish', jobId: run.job.jobId, ...counts };
}

async function fail(run: Run, error: unknown): Promise<FailStepOutput> {
  const message = failureMessage(error);
  const status = await jobTransaction(run.database, { ...run.job, lock: false, operation: 'read the job' }, async (tx) => {
    const { rows } = await tx.query(selectJobSql(run.job.schema), [run.job.jobId]);
    const row = rows[0] as { status_id: number } | undefined;
    if (!row) throw new JobNotFoundError(run.job.jobId);
    return Number(row.status_id) as OrcaStatus;
  });
  const marked = status === OrcaStatus.GeneratingReports;
  if (marked) await markFailed(run, new Error(message));
  else run.logger.warn('a step failed; the job is left as it was', { ...where(run), status, error: message });
  publishFailure(run, new Error(message));
  return { step: 'fail', jobId: run.job.jobId, marked, error: message };
}

/** As {@link task} does: a refusal before the job was started changes nothing; else mark `error`. */
async function recordFailure(run: Run, error: unknown, started: boolean): Promise<void> {
  if (!started && isRefusal(error)) run.logger.error('reconciliation refused', { ...where(run), error: messageOf(error) });
  else await markFailed(run, error);
  publishFailure(run, error);
}
