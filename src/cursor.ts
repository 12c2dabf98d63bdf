import { throwIfAborted, withAbort } from './abort.js';
import { type Database, type Queryable, withReadTransaction } from './database.js';
import { DatabaseError, OrcaReconcileError } from './errors.js';
import { closeCursorSql, fetchCursorSql } from './sql/reports.js';

/**
 * Hands a batch of rows to the consumer; resolves once the consumer asks for the next batch, to
 * `false` when it stopped reading (broke out of its loop, or threw).
 */
export type Emit<T> = (rows: T[]) => Promise<boolean>;

/**
 * Runs `produce` in one read-only transaction and yields the rows of every batch it emits, one
 * batch in flight at a time: the transaction fetches the next batch only once the consumer has
 * taken the last, so memory stays flat whatever the number of rows. When the consumer stops
 * early, `emit` resolves to `false` and `produce` should return; the transaction then ends.
 * Aborting `signal` cancels the statement running on the server, rolls the transaction back and
 * ends the loop with `AbortError`. Errors other than the library's own are wrapped in
 * `DatabaseError(operation)`.
 */
export async function* streamFromReadTransaction<T>(
  database: Database,
  operation: string,
  signal: AbortSignal | undefined,
  produce: (tx: Queryable, emit: Emit<T>) => Promise<void>,
): AsyncGenerator<T, void, undefined> {
  // The generator cannot yield from inside the transaction's callback, so batches are handed over
  // through a small queue.
  const channel = createChannel<T[]>();
  const reading = withReadTransaction(database, (client) =>
    withAbort(client, signal, operation, (tx) => produce(tx, (rows) => channel.put(rows))),
  ).then(
    () => channel.end(),
    (error: unknown) => channel.fail(error instanceof OrcaReconcileError ? error : new DatabaseError(operation, error)),
  );

  try {
    for (;;) {
      const batch = await channel.take();
      if (batch === undefined) break;
      for (const row of batch) {
        throwIfAborted(signal, operation);
        yield row;
      }
    }
  } finally {
    channel.cancel();
    await reading;
  }
}

let cursorCounter = 0;

/**
 * Declares a server-side cursor with `declare(name)` and `values`, fetches it `batchSize` rows at
 * a time, emits each batch mapped by `map`, and closes it. Resolves to `false` when the consumer
 * stopped reading, `true` when the cursor was read to its end. Each call names its cursor anew,
 * so reads that share a client's transaction do not collide.
 */
export async function readCursor<T>(
  tx: Queryable,
  declare: (cursorName: string) => string,
  values: unknown[],
  batchSize: number,
  map: (raw: Record<string, unknown>) => T,
  emit: Emit<T>,
): Promise<boolean> {
  const cursorName = `orca_rows_${(cursorCounter += 1)}`;
  await tx.query(declare(cursorName), values);
  let wanted = true;
  while (wanted) {
    const { rows } = await tx.query(fetchCursorSql(cursorName, batchSize));
    if (rows.length === 0) break;
    wanted = await emit((rows as Record<string, unknown>[]).map(map));
  }
  await tx.query(closeCursorSql(cursorName));
  return wanted;
}

/** One batch in flight between the transaction and the consumer. */
function createChannel<T>() {
  let pending: { resolve: (value: T | undefined) => void; reject: (error: unknown) => void } | undefined;
  let waitingPut: ((wanted: boolean) => void) | undefined;
  let buffered: { value: T; ack: (wanted: boolean) => void } | undefined;
  let done = false;
  let failure: unknown;
  let cancelled = false;

  return {
    put(value: T): Promise<boolean> {
      if (cancelled) return Promise.resolve(false);
      return new Promise<boolean>((ack) => {
        if (pending) {
          const taker = pending;
          pending = undefined;
          waitingPut = ack;
          taker.resolve(value);
        } else {
          buffered = { value, ack };
        }
      });
    },
    take(): Promise<T | undefined> {
      // The consumer asks for more: the producer may fetch the next batch.
      const ack = waitingPut;
      waitingPut = undefined;
      ack?.(true);
      if (buffered) {
        const { value, ack: bufferedAck } = buffered;
        buffered = undefined;
        waitingPut = bufferedAck;
        return Promise.resolve(value);
      }
      if (failure !== undefined) return Promise.reject(failure);
      if (done) return Promise.resolve(undefined);
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
      });
    },
    end(): void {
      done = true;
      pending?.resolve(undefined);
      pending = undefined;
    },
    fail(error: unknown): void {
      failure = error;
      pending?.reject(error);
      pending = undefined;
    },
    cancel(): void {
      cancelled = true;
      waitingPut?.(false);
      waitingPut = undefined;
      buffered?.ack(false);
      buffered = undefined;
    },
  };
}
