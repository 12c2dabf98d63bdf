import { RunLostError } from './errors.js';
import type { Queryable } from './database.js';
import { type JobState, guardedTransaction } from './guard.js';
import {
  type PieceResult,
  type RunScope,
  type RunState,
  autoPieces,
  dropStaleStaging,
  openRun,
  runPieces,
} from './pieces.js';
import { runProgressSql } from './sql/pieces.js';
import { copyBothSides } from './copy.js';

/**
 * Progress of a pieced run, as {@link GenerateReportsOptions.onProgress} hears it: once when the
 * run is planned (with the pieces a resumed run had finished before), then after every piece
 * this call finishes.
 *
 * @example
 * ```ts
 * import { generateReports, type RunProgress } from 'orca-reconcile';
 *
 * const show = (p: RunProgress) => console.log(`${p.piecesDone}/${p.pieces} pieces, ${p.filesDone} of ${p.files} files`);
 * await generateReports(pool, { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' }, { pieces: 'auto', onProgress: show });
 * ```
 * @category Reconcile
 */
export interface RunProgress {
  jobId: number;
  /** Id of the run in the `orca_reconcile_run` table. */
  runId: number;
  pieces: number;
  piecesDone: number;
  /** Catalog files plus listing rows of the whole run. */
  files: number;
  /**
   * Catalog files plus listing rows of the finished pieces, as the run's share: pieces are cut by
   * a hash of the key, so each holds about the same number of files.
   */
  filesDone: number;
  /** Whether the run continues one an earlier call left unfinished. */
  resumed: boolean;
}

/** How a pieced run is driven. */
export interface PiecedRunOptions {
  pieces: number | 'auto';
  concurrency: number;
  onProgress?: ((progress: RunProgress) => void) | undefined;
}

/**
 * Runs a job's reports in pieces: plans the run (or continues the job's unfinished one), copies
 * the catalog and listing, runs the pieces with `concurrency` workers, then `finish` in one
 * transaction holding the job's lock. `single` runs instead when 'auto' finds the bucket small.
 * A run whose staging data was lost to a server restart is planned once more from the start.
 */
export async function piecedRun<T>(
  scope: RunScope,
  options: PiecedRunOptions,
  finish: (tx: Queryable, job: JobState, runId: number) => Promise<T>,
  single: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await piecedRunOnce(scope, options, finish, single);
    } catch (error) {
      if (!(error instanceof RunLostError) || attempt > 1) throw error;
      scope.logger?.warn('the run was lost; planning it again', { jobId: scope.jobId, runId: error.runId, error: error.message });
    }
  }
}

async function piecedRunOnce<T>(
  scope: RunScope,
  options: PiecedRunOptions,
  finish: (tx: Queryable, job: JobState, runId: number) => Promise<T>,
  single: () => Promise<T>,
): Promise<T> {
  const { jobId, orcaArchiveLocation, schema } = scope;
  const { pieces } = options;
  const opened = await openRun(scope, (tx) => (pieces === 'auto' ? autoPieces(tx, schema, orcaArchiveLocation) : Promise.resolve(pieces)));
  if (!opened) return single();
  const run = await copyBothSides(scope, opened.run, options.concurrency);
  const progress = await startProgress(scope, run, opened.resumed);
  scope.logger?.info?.(opened.resumed ? 'run resumed' : 'run planned', {
    jobId,
    orcaArchiveLocation,
    runId: run.runId,
    pieces: run.pieces,
    piecesDone: progress.piecesDone,
    files: progress.files,
  });
  options.onProgress?.({ ...progress });
  await runPieces(scope, run, options.concurrency, (result: PieceResult) => {
    progress.piecesDone += 1;
    // A key's piece is a hash of it, so every piece holds about the same share of the files.
    progress.filesDone = Math.round((progress.files * progress.piecesDone) / progress.pieces);
    scope.logger?.info?.('piece finished', {
      jobId,
      runId: run.runId,
      piece: result.piece,
      pieces: run.pieces,
      rows: result.phantoms + result.orphans + result.mismatches,
      durationMs: result.durationMs,
    });
    options.onProgress?.({ ...progress });
  });
  const result = await guardedTransaction(scope.database, { ...scope, operation: 'finish the run' }, (tx, job) =>
    finish(tx, job, run.runId),
  );
  await dropStaleStaging(scope, scope.deadline);
  return result;
}

async function startProgress(scope: RunScope, run: RunState, resumed: boolean): Promise<RunProgress> {
  const { rows } = await scope.database.query(runProgressSql(scope.schema), [[scope.jobId]]);
  const row = rows[0] as { pieces_done?: unknown; files_done?: unknown } | undefined;
  return {
    jobId: scope.jobId,
    runId: run.runId,
    pieces: run.pieces,
    piecesDone: Number(row?.pieces_done ?? 0),
    files: (run.catalogFiles ?? 0) + (run.listingFiles ?? 0),
    filesDone: Number(row?.files_done ?? 0),
    resumed,
  };
}
