import { ConfigurationError, InvalidInputError, RunLostError, RunNotReadyError, StaleInventoryError } from './errors.js';
import { type Database, type Queryable, affectedRows, isPool, withTransaction } from './database.js';
import { forEachConcurrently } from './workers.js';
import type { Deadline } from './deadline.js';
import { type JobTransactionOptions, checkListing, checkNewest, guardedTransaction, jobTransaction } from './guard.js';
import { LOCK_ITEM_SQL, TRY_LOCK_ITEM_SQL, runLockKey } from './sql/jobs.js';
import {
  MAX_PIECES,
  PIECE_TABLE,
  RUN_TABLE,
  PIECE_SETTINGS_SQL,
  copyCatalogSql,
  copyListingSql,
  createStagingStatements,
  discardRunsSql,
  dropOrphanStagingSql,
  dropStagingBatches,
  estimateListingSql,
  finishRunSql,
  insertRunSql,
  missingPiecesSql,
  moveStagedReportsSql,
  pieceDoneSql,
  pieceSources,
  progressTablesExistSql,
  recordCopySql,
  recordPieceSql,
  selectRunSql,
  staleStagingSql,
  unfinishedRunSql,
} from './sql/pieces.js';
import { REPORT_KINDS, deleteReportSql, storageClassArraysSql, writeReportsSql } from './sql/reports.js';
import { partitionRelation } from './sql/ddl.js';
import type { QuotedSchema } from './sql/schema.js';
import type { Logger } from './types.js';

/**
 * The engine of pieced runs. A run copies the bucket's catalog and listing once into staging
 * tables cut by a hash of key_path (the plan), compares each pair of partitions in a transaction
 * of its own (the pieces, which can run at once on several connections or hosts), and moves the
 * staged report rows into the job's reports in one transaction (the finish). Finished copies and
 * pieces are recorded, so a run that stops loses only the work in flight.
 */

/** Files per piece that 'auto' aims at: a piece's hash table then fits in its 64 MB work_mem. */
export const FILES_PER_PIECE = 250_000;

/**
 * Below this many files (estimated), 'auto' keeps the single statement: faster on one machine at
 * every size measured, and below this its temp files stay under 1 GiB (docs/performance.md).
 */
export const AUTO_MIN_FILES = 3_000_000;

/** Counts of one report set. */
export interface Counts {
  phantoms: number;
  orphans: number;
  mismatches: number;
}

/** What every step of a run works with. */
export interface RunScope extends Omit<JobTransactionOptions, 'operation'> {
  database: Database;
  logger?: Pick<Logger, 'warn'> & Partial<Pick<Logger, 'info'>>;
}

/** The two inputs a run copies: the bucket's catalog files and its listing. */
export type Side = 'catalog' | 'listing';

/** A run as its steps see it. */
export interface RunState {
  runId: number;
  pieces: number;
  piecesDone: number;
  catalogFiles: number | null;
  listingFiles: number | null;
}

type Row = Record<string, unknown>;
const num = (value: unknown): number => Number(value);
const numOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));

/** Checks a `pieces` option: a whole number from 1 to {@link MAX_PIECES}, or 'auto'. */
export function validatePieces(value: unknown, field = 'pieces'): number | 'auto' | undefined {
  if (value === undefined || value === 'auto') return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_PIECES) {
    throw new InvalidInputError(field, `${field} must be 'auto' or a whole number from 1 to ${MAX_PIECES}, got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

/** Checks a `concurrency` option: a whole number from 1 to 64. Default 1. */
export function validateConcurrency(value: unknown, field = 'concurrency'): number {
  if (value === undefined) return 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 64) {
    throw new InvalidInputError(field, `${field} must be a whole number from 1 to 64, got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

/**
 * How many pieces 'auto' gives a bucket: none (the single statement) below {@link AUTO_MIN_FILES}
 * files, else one per {@link FILES_PER_PIECE}. The size is the planner's estimate of the bucket's
 * inventory partition, read without scanning it.
 */
export async function autoPieces(tx: Queryable, schema: QuotedSchema, orcaArchiveLocation: string): Promise<number> {
  const { rows } = await tx.query(estimateListingSql, [partitionRelation(schema, orcaArchiveLocation)]);
  const files = num((rows[0] as Row | undefined)?.files ?? 0);
  if (files < AUTO_MIN_FILES) return 0;
  return Math.min(MAX_PIECES, Math.ceil(files / FILES_PER_PIECE));
}

function runState(row: Row): RunState {
  return {
    runId: num(row.id),
    pieces: num(row.pieces),
    piecesDone: num(row.pieces_done),
    catalogFiles: numOrNull(row.catalog_files),
    listingFiles: numOrNull(row.listing_files),
  };
}

/** Why a run's staging data cannot be trusted any more, or undefined. */
function lostBecause(row: Row): string | undefined {
  if (row.restarted) return 'the server restarted since it began, which empties its unlogged staging tables';
  if (row.staging_missing) return 'its staging tables are gone';
  return undefined;
}

/**
 * Reads a run for a step of it and checks that the step may go on: the run is the job's, is
 * neither finished nor discarded, and its staging data is intact.
 */
export async function loadRun(tx: Queryable, scope: RunScope, runId: number): Promise<RunState> {
  const { rows } = await tx.query(selectRunSql(scope.schema), [runId]);
  const row = rows[0] as Row | undefined;
  if (!row || num(row.job_id) !== scope.jobId) {
    throw new InvalidInputError('runId', `run ${runId} is not a run of reconcile_job ${scope.jobId}`);
  }
  if (row.finished_at !== null) throw new RunNotReadyError(scope.jobId, runId, 'is finished already');
  if (row.discarded_at !== null) throw new RunNotReadyError(scope.jobId, runId, 'was discarded: a newer run or job replaced it');
  const lost = lostBecause(row);
  if (lost) throw new RunLostError(scope.jobId, runId, lost);
  return runState(row);
}

/** Refuses a pieced run in a schema without the progress tables, saying how to add them. */
async function requireProgressTables(tx: Queryable, schema: QuotedSchema): Promise<void> {
  for (const table of [RUN_TABLE, PIECE_TABLE]) {
    const { rows } = await tx.query(progressTablesExistSql, [`${schema}.${table}`]);
    if (!(rows[0] as Row).present) {
      throw new ConfigurationError(
        table,
        `a pieced run needs the progress table ${schema}.${table}: create the progress tables with createProgressTables() or \`orca-reconcile schema --progress\`, or run the SQL that \`orca-reconcile schema --progress --print\` prints`,
      );
    }
  }
}

/**
 * Plan, part 1, in one transaction holding the job's lock: continues the job's unfinished run if
 * it is intact, or makes a new run with `pieces` pieces (resolved inside the transaction, so that
 * 'auto' can answer 0: no run, use the single statement). Unfinished runs of the bucket's older
 * jobs, and a lost run of this job, are discarded.
 */
export async function openRun(
  scope: RunScope,
  pieces: (tx: Queryable) => Promise<number>,
): Promise<{ run: RunState; resumed: boolean } | undefined> {
  const { schema, jobId, orcaArchiveLocation } = scope;
  return guardedTransaction(scope.database, { ...scope, operation: 'plan the run' }, async (tx) => {
    await requireProgressTables(tx, schema);
    await checkListing(tx, schema, jobId, orcaArchiveLocation);
    const { rows } = await tx.query(unfinishedRunSql(schema), [jobId]);
    const open = rows[0] as Row | undefined;
    const lost = open && lostBecause(open);
    if (open && !lost) return { run: runState(open), resumed: true };
    if (open) scope.logger?.warn('starting the run again', { jobId, runId: num(open.id), reason: lost });
    await tx.query(discardRunsSql(schema), [jobId, orcaArchiveLocation, open ? num(open.id) : null]);
    const count = await pieces(tx);
    if (count === 0) return undefined;
    const created = await tx.query(insertRunSql(schema), [jobId, orcaArchiveLocation, count]);
    const runId = num((created.rows[0] as Row).id);
    // Tables of this id with no run row (progress tables made again, their ids starting over)
    // belong to no run: they go.
    await tx.query(dropOrphanStagingSql(schema, runId));
    for (const statement of createStagingStatements(schema, runId, count)) await tx.query(statement);
    return { run: { runId, pieces: count, piecesDone: 0, catalogFiles: null, listingFiles: null }, resumed: false };
  });
}

/**
 * Plan, part 2: copies one side (the catalog or the listing) into the run's staging partitions,
 * unless it is copied already. The copy holds the job's lock in shared mode and its own item
 * lock, so two workers never copy one side twice. Returns the rows of that side.
 */
export async function copySide(scope: RunScope, runId: number, side: Side): Promise<number> {
  const { schema, jobId, orcaArchiveLocation } = scope;
  return jobTransaction(scope.database, { ...scope, lock: 'shared', operation: `copy the ${side}` }, async (tx) => {
    await tx.query(LOCK_ITEM_SQL, [runLockKey(schema, runId), side === 'catalog' ? 0 : -1]);
    const run = await loadRun(tx, scope, runId);
    const copied = side === 'catalog' ? run.catalogFiles : run.listingFiles;
    if (copied !== null) return copied;
    const sql = side === 'catalog' ? copyCatalogSql(schema, runId, run.pieces) : copyListingSql(schema, runId, run.pieces);
    const rows = affectedRows(await tx.query(sql, [orcaArchiveLocation]));
    // A loader that truncated the partition while it was read leaves a newer job behind.
    await checkNewest(tx, schema, jobId, orcaArchiveLocation);
    await tx.query(recordCopySql(schema, side), [runId, rows]);
    return rows;
  });
}

/** What one piece did. */
export interface PieceResult extends Counts {
  piece: number;
  /** The run's number of pieces. */
  pieces: number;
  durationMs: number;
}

/**
 * One piece, in a transaction of its own holding the job's lock in shared mode: compares the
 * piece's catalog and listing partitions and writes its report rows to the run's staging report
 * tables, then records the piece. Resolves to `busy` when another worker holds the piece, and
 * `done` when it is finished already. Every piece checks the job and its listing again.
 */
export async function runPiece(scope: RunScope, runId: number, piece: number): Promise<PieceResult | 'busy' | 'done'> {
  const { schema, jobId, orcaArchiveLocation } = scope;
  const started = Date.now();
  return guardedTransaction(scope.database, { ...scope, lock: 'shared', operation: `piece ${piece}` }, async (tx) => {
    const { rows: taken } = await tx.query(TRY_LOCK_ITEM_SQL, [runLockKey(schema, runId), piece]);
    if (!(taken[0] as Row).taken) return 'busy';
    const run = await loadRun(tx, scope, runId);
    if (piece < 1 || piece > run.pieces || !Number.isInteger(piece)) {
      throw new InvalidInputError('piece', `piece must be a whole number from 1 to ${run.pieces} (run ${runId}), got ${piece}`);
    }
    if ((await tx.query(pieceDoneSql(schema), [runId, piece])).rows.length > 0) return 'done';
    if (run.catalogFiles === null || run.listingFiles === null) {
      throw new RunNotReadyError(jobId, runId, 'is not planned yet: its catalog and listing are still to be copied');
    }
    await checkListing(tx, schema, jobId, orcaArchiveLocation);
    await tx.query(PIECE_SETTINGS_SQL);
    const classes = (await tx.query(storageClassArraysSql(schema))).rows[0] as { ids: unknown; names: unknown };
    const { rows } = await tx.query(writeReportsSql(schema, pieceSources(schema, runId, piece)), [jobId, classes.ids, classes.names]);
    const row = rows[0] as Row;
    if (row.foreign_job_id !== null) throw new StaleInventoryError(jobId, num(row.foreign_job_id), orcaArchiveLocation);
    await checkNewest(tx, schema, jobId, orcaArchiveLocation);
    const result: PieceResult = {
      piece,
      pieces: run.pieces,
      phantoms: num(row.phantoms),
      orphans: num(row.orphans),
      mismatches: num(row.mismatches),
      durationMs: Date.now() - started,
    };
    await tx.query(recordPieceSql(schema), [runId, piece, result.phantoms, result.orphans, result.mismatches, result.durationMs]);
    return result;
  });
}

/** Pieces of a run still to do, in order. */
export async function missingPieces(scope: RunScope, run: RunState): Promise<number[]> {
  const { rows } = await scope.database.query(missingPiecesSql(scope.schema), [run.runId, run.pieces]);
  return rows.map((row) => num((row as Row).piece));
}

/** Waits until whoever holds a piece lets it go (it finished it, or its transaction ended). */
async function waitForPiece(scope: RunScope, runId: number, piece: number): Promise<void> {
  await jobTransaction(scope.database, { ...scope, lock: false, operation: `wait for piece ${piece}` }, async (tx) => {
    await tx.query(LOCK_ITEM_SQL, [runLockKey(scope.schema, runId), piece]);
  });
}

/**
 * One piece, for a step that must see it finished: waits for whoever holds it, then runs it
 * unless it is finished by then.
 */
export async function runOnePiece(scope: RunScope, runId: number, piece: number): Promise<PieceResult | 'done'> {
  for (;;) {
    const result = await runPiece(scope, runId, piece);
    if (result !== 'busy') return result;
    await waitForPiece(scope, runId, piece);
  }
}

/**
 * Runs every unfinished piece of a run with `concurrency` workers and returns when all are
 * finished, here or by other workers. `onPiece` hears of each piece finished here.
 */
export async function runPieces(
  scope: RunScope,
  run: RunState,
  concurrency: number,
  onPiece: (result: PieceResult) => void,
): Promise<void> {
  const workers = isPool(scope.database) ? concurrency : 1;
  for (;;) {
    const todo = await missingPieces(scope, run);
    if (todo.length === 0) return;
    const busy: number[] = [];
    await forEachConcurrently(todo, workers, async (piece) => {
      const result = await runPiece(scope, run.runId, piece);
      if (result === 'busy') busy.push(piece);
      else if (result !== 'done') onPiece(result);
    });
    // Pieces held by other workers: wait for the first, then look again.
    if (busy.length > 0) await waitForPiece(scope, run.runId, busy[0]!);
  }
}

/**
 * Finish, inside the caller's transaction (which holds the job's lock): checks that every piece
 * is finished and the listing still the job's, replaces the job's reports with the staged rows
 * and marks the run finished. Readers see the old reports or the final ones, never a part. A run
 * finished already returns the counts it recorded.
 */
export async function finishRunIn(tx: Queryable, scope: RunScope, runId: number): Promise<Counts> {
  const { schema, jobId, orcaArchiveLocation } = scope;
  // Another worker of the run (a second call, a retried step) may have finished it meanwhile.
  const { rows: found } = await tx.query(selectRunSql(schema), [runId]);
  const done = found[0] as Row | undefined;
  if (done && num(done.job_id) === jobId && done.finished_at !== null) {
    return { phantoms: num(done.phantoms), orphans: num(done.orphans), mismatches: num(done.mismatches) };
  }
  const run = await loadRun(tx, scope, runId);
  if (run.piecesDone < run.pieces) {
    throw new RunNotReadyError(jobId, runId, `has ${run.piecesDone} of ${run.pieces} pieces finished`);
  }
  await checkNewest(tx, schema, jobId, orcaArchiveLocation);
  for (const kind of REPORT_KINDS) await tx.query(deleteReportSql(schema, kind), [jobId]);
  const { rows } = await tx.query(moveStagedReportsSql(schema, runId));
  const row = rows[0] as Row;
  const counts = { phantoms: num(row.phantoms), orphans: num(row.orphans), mismatches: num(row.mismatches) };
  await tx.query(finishRunSql(schema), [runId, counts.phantoms, counts.orphans, counts.mismatches]);
  return counts;
}

/**
 * Drops the staging tables of the bucket's runs that are over (finished or discarded), a batch
 * of partitions per transaction. Best effort: what is left is dropped the next time.
 */
export async function dropStaleStaging(scope: RunScope, deadline?: Deadline): Promise<void> {
  const { schema, orcaArchiveLocation } = scope;
  try {
    const { rows } = await scope.database.query(staleStagingSql(schema), [orcaArchiveLocation]);
    for (const row of rows as Row[]) {
      for (const batch of dropStagingBatches(schema, num(row.id), num(row.pieces))) {
        if (deadline && Date.now() > deadline.at) return;
        await withTransaction(scope.database, async (tx) => {
          for (const statement of batch) await tx.query(statement);
        });
      }
    }
  } catch (error) {
    scope.logger?.warn('could not drop the staging tables of finished runs', { orcaArchiveLocation, error: String(error) });
  }
}
