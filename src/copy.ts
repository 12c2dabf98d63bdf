import { type PoolLike, type Queryable, affectedRows, isPool, withTransaction } from './database.js';
import { applyDeadline } from './deadline.js';
import { OrcaReconcileError } from './errors.js';
import { abortError, throwIfAborted, withAbort } from './abort.js';
import { checkNewest, jobTransaction, lockJob, operationError } from './guard.js';
import { LOCK_ITEM_SESSION_SQL, UNLOCK_ITEM_SESSION_SQL, runLockKey } from './sql/jobs.js';
import {
  EXPORT_SNAPSHOT_SQL,
  copyChunkSql,
  recordCopySql,
  sideBlocksSql,
  truncateSideSql,
} from './sql/pieces.js';
import { type RunScope, type RunState, type Side, copySide, loadRun } from './pieces.js';
import { SERVER_VERSION_SQL } from './sql/session.js';
import { partitionRelation } from './sql/ddl.js';
import { forEachConcurrently } from './workers.js';

/**
 * The plan's copy of one side (the catalog or the listing) cut into block ranges, copied at once
 * on several connections. Every chunk imports one snapshot that a coordinating transaction
 * exported, so the copy sees the catalog as of one moment, as the single statement does, while
 * ORCA goes on writing to it. `workers` copy the `chunks` ranges in turn. Needs a pool (one
 * connection more than `workers`) and PostgreSQL 14 or later (TID range scans); the caller
 * checks both.
 */
export async function copySideInChunks(
  scope: RunScope & { database: PoolLike },
  run: RunState,
  side: Side,
  workers: number,
  chunks: number,
): Promise<number> {
  const { schema, jobId, orcaArchiveLocation } = scope;
  const operation = `copy the ${side}`;
  const key = [runLockKey(schema, run.runId), side === 'catalog' ? 0 : -1];
  const coordinator = await scope.database.connect();
  let broken: Error | undefined;
  const query: Queryable['query'] = async (text, values) => {
    try {
      return await coordinator.query(text, values);
    } catch (error) {
      broken ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    }
  };
  try {
    // A session lock, held across the transactions below and let go if this process dies; taken
    // in a transaction of its own so that the deadline bounds the wait.
    await query('BEGIN');
    await applyDeadline({ query }, scope.deadline, operation);
    await query(LOCK_ITEM_SESSION_SQL, key);
    await query('COMMIT');
    try {
      const current = await loadRun({ query }, scope, run.runId);
      const copied = side === 'catalog' ? current.catalogFiles : current.listingFiles;
      if (copied !== null) return copied;
      // An earlier attempt may have committed some chunks.
      await query(truncateSideSql(schema, run.runId, side));
      await query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const { rows } = await query(EXPORT_SNAPSHOT_SQL);
      const snapshot = String((rows[0] as { snapshot: string }).snapshot);
      const relation = side === 'catalog' ? `${schema}.files` : partitionRelation(schema, orcaArchiveLocation);
      const { rows: sized } = await query(sideBlocksSql, [relation]);
      const blocks = Number((sized[0] as { blocks: unknown } | undefined)?.blocks ?? 0);
      const ranges = blockRanges(blocks, chunks);
      let total = 0;
      await forEachConcurrently(ranges, workers, async ([from, to]) => {
        throwIfAborted(scope.signal, operation);
        // Not `total += await ...`: that reads `total` before the wait, and workers would
        // overwrite each other's sums.
        const rows = await copyChunk(scope, run, side, snapshot, from, to);
        total += rows;
      });
      await query('COMMIT');
      // A loader that truncated the partition while it was read leaves a newer job behind.
      return await jobTransaction(scope.database, { ...scope, lock: 'shared', operation }, async (tx) => {
        await checkNewest(tx, schema, jobId, orcaArchiveLocation);
        await tx.query(recordCopySql(schema, side), [run.runId, total]);
        return total;
      });
    } finally {
      await coordinator.query('ROLLBACK').catch(() => undefined);
      await query(UNLOCK_ITEM_SESSION_SQL, key).catch(() => undefined);
    }
  } catch (error) {
    // The coordinator's own statements run without withAbort: a failure after the abort is one.
    if (scope.signal?.aborted && !(error instanceof OrcaReconcileError)) throw abortError(scope.signal, operation);
    throw operationError(error, scope.deadline, operation);
  } finally {
    coordinator.release(broken);
  }
}

/** `chunks` block ranges covering `[0, blocks)`; the last is open-ended (null). */
export function blockRanges(blocks: number, chunks: number): [number, number | null][] {
  const count = Math.max(1, Math.min(chunks, blocks));
  const size = Math.ceil(blocks / count);
  return Array.from({ length: count }, (_, index) => [index * size, index === count - 1 ? null : (index + 1) * size]);
}

/** One block range of one side, in a transaction that imports the coordinator's snapshot. */
async function copyChunk(
  scope: RunScope & { database: PoolLike },
  run: RunState,
  side: Side,
  snapshot: string,
  from: number,
  to: number | null,
): Promise<number> {
  const { schema, jobId, orcaArchiveLocation } = scope;
  const operation = `copy the ${side}`;
  return withTransaction(scope.database, (client) => withAbort(client, scope.signal, operation, async (tx) => {
    // Both must come before any other statement of the transaction.
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await tx.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/[^0-9A-Fa-f-]/g, '')}'`);
    await applyDeadline(tx, scope.deadline, operation);
    await lockJob(tx, schema, jobId, true);
    const result = await tx.query(copyChunkSql(schema, run.runId, run.pieces, side, to !== null), [
      orcaArchiveLocation,
      `(${from},0)`,
      ...(to === null ? [] : [`(${to},0)`]),
    ]);
    return affectedRows(result);
  }));
}

const CHUNKS_PER_WORKER = 4;

/**
 * Plan, part 2: copies both sides. With a pool and `concurrency` 2 or more on PostgreSQL 14 or
 * later, each side is cut into `concurrency` block ranges copied at once from one snapshot (see
 * {@link copySideInChunks}); otherwise each side is one statement, the two at once when the pool
 * allows.
 */
export async function copyBothSides(scope: RunScope, run: RunState, concurrency: number): Promise<RunState> {
  const { database } = scope;
  if (concurrency > 1 && isPool(database)) {
    const { rows } = await database.query(SERVER_VERSION_SQL);
    if (Number((rows[0] as { version: unknown }).version) >= 140000) {
      const pooled = { ...scope, database };
      // More ranges than workers: a bucket's rows need not be spread evenly over the table.
      const catalogFiles = await copySideInChunks(pooled, run, 'catalog', concurrency, concurrency * CHUNKS_PER_WORKER);
      const listingFiles = await copySideInChunks(pooled, run, 'listing', concurrency, concurrency * CHUNKS_PER_WORKER);
      return { ...run, catalogFiles, listingFiles };
    }
    const copied = { catalog: 0, listing: 0 };
    await forEachConcurrently(['catalog', 'listing'] as const, 2, async (side) => {
      copied[side] = await copySide(scope, run.runId, side);
    });
    return { ...run, catalogFiles: copied.catalog, listingFiles: copied.listing };
  }
  const catalogFiles = await copySide(scope, run.runId, 'catalog');
  const listingFiles = await copySide(scope, run.runId, 'listing');
  return { ...run, catalogFiles, listingFiles };
}
