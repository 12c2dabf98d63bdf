import { connect } from 'node:net';
import { AbortError, InvalidInputError } from './errors.js';
import type { Queryable } from './database.js';

/** Checks an option that must be an AbortSignal, if given. */
export function validateSignal(value: unknown, field = 'signal'): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw new InvalidInputError(field, `${field} must be an AbortSignal`);
  return value;
}

/** The library's error for an aborted signal: `name` is `AbortError`, `cause` the signal's reason. */
export function abortError(signal: AbortSignal, operation: string): AbortError {
  return new AbortError(operation, signal.reason);
}

/** Throws {@link AbortError} when the signal has been aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, operation: string): void {
  if (signal?.aborted) throw abortError(signal, operation);
}

/** What a `pg` client knows of its own backend: enough to ask the server to cancel its statement. */
interface CancellableClient {
  processID: number;
  secretKey: number;
  host?: string;
  port?: number;
}

function isCancellable(client: unknown): client is CancellableClient {
  const candidate = client as Partial<CancellableClient> | null;
  return typeof candidate?.processID === 'number' && typeof candidate.secretKey === 'number';
}

/**
 * Sends PostgreSQL's CancelRequest for the client's backend on a connection of its own, as libpq's
 * `PQcancel` does: the statement running there stops with `query_canceled`. Best effort: a server
 * that cannot be reached leaves the statement to the between-statement check.
 */
function sendCancelRequest(client: CancellableClient): void {
  const host = client.host ?? 'localhost';
  const port = client.port ?? 5432;
  const socket = host.startsWith('/') ? connect(`${host}/.s.PGSQL.${port}`) : connect(port, host);
  socket.on('error', () => socket.destroy());
  socket.on('connect', () => {
    const message = Buffer.alloc(16);
    message.writeInt32BE(16, 0);
    message.writeInt32BE(80877102, 4); // the CancelRequest code
    message.writeInt32BE(client.processID, 8);
    message.writeInt32BE(client.secretKey, 12);
    socket.end(message);
  });
}

/**
 * Runs `work` with a view of `tx` that stops at the signal: every statement first checks it, and
 * on abort a `pg` client's running statement is cancelled on the server. PGlite has no second
 * session to cancel from, so there the statement in flight finishes and the next one is refused.
 */
export async function withAbort<T>(
  tx: Queryable,
  signal: AbortSignal | undefined,
  operation: string,
  work: (tx: Queryable) => Promise<T>,
): Promise<T> {
  if (!signal) return work(tx);
  throwIfAborted(signal, operation);
  const onAbort = () => {
    if (isCancellable(tx)) sendCancelRequest(tx);
  };
  signal.addEventListener('abort', onAbort, { once: true });
  const guarded: Queryable = {
    query: (text, values) => {
      throwIfAborted(signal, operation);
      return tx.query(text, values);
    },
  };
  try {
    return await work(guarded);
  } catch (error) {
    // The server's "canceling statement due to user request", or any failure after the abort.
    if (signal.aborted) throw abortError(signal, operation);
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
