import { TimeoutError } from './errors.js';
import type { Queryable } from './database.js';
import { LIMIT_TRANSACTION_SQL } from './sql/session.js';
import { validateDeadline } from './validation.js';

/**
 * Everything about time limits lives here: the run's deadline, how it bounds a transaction, how
 * a timeout is recognised and reported, and the time reserved for recording a failure.
 */

/** When a run must give up: epoch milliseconds, and when the run started (for messages). */
export interface Deadline {
  at: number;
  startedAt: number;
}

/** The run's deadline from an option, or none. Throws `InvalidInputError` for a bad value. */
export function deadlineOf(value: unknown, startedAt = Date.now()): Deadline | undefined {
  return value === undefined ? undefined : { at: validateDeadline(value), startedAt };
}

/**
 * The deadline of one Lambda invocation: its remaining time less the safety margin, or none when
 * the context does not tell.
 */
export function invocationDeadline(remainingMs: unknown, marginMs: number, now = Date.now()): number | undefined {
  return typeof remainingMs === 'number' && Number.isFinite(remainingMs) ? now + remainingMs - marginMs : undefined;
}

// Marking the job failed gets this long for its lock wait, its statement and its retries, so a
// run that timed out can still record why before the host stops it. The handler's safety margin
// is larger than this.
export const RECORD_FAILURE_TIMEOUT_MS = 5_000;

/**
 * The deadline for recording a failure of a run with a deadline: past the run's deadline, only
 * the reserved time is left.
 */
export function failureDeadline(run: Deadline | undefined, now = Date.now()): Deadline | undefined {
  return run && { at: Math.max(run.at, now) + RECORD_FAILURE_TIMEOUT_MS, startedAt: now };
}

/**
 * Bounds every statement and lock wait of the current transaction by the time left before the
 * deadline, so PostgreSQL cancels the work instead of the host killing the process.
 */
export async function applyDeadline(tx: Queryable, deadline: Deadline | undefined, operation: string): Promise<void> {
  if (!deadline) return;
  const left = Math.floor(deadline.at - Date.now());
  if (left <= 0) throw timeoutError(deadline, operation);
  await limitTransaction(tx, left);
}

/** Sets `statement_timeout` and `lock_timeout` for the rest of the current transaction. */
export async function limitTransaction(tx: Queryable, milliseconds: number): Promise<void> {
  await tx.query(LIMIT_TRANSACTION_SQL, [String(Math.min(Math.floor(milliseconds), MAX_TIMEOUT_MS))]);
}

// statement_timeout and lock_timeout are int4 milliseconds: a deadline further ahead (a context
// that reports 30 days left) is as good as none.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

// statement_timeout cancels with query_canceled, lock_timeout with lock_not_available.
const TIMEOUT_SQLSTATES = new Set(['57014', '55P03']);

/** Whether an error, or one of its causes, is a timeout. */
export function isTimeout(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth += 1) {
    if (current instanceof TimeoutError) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && TIMEOUT_SQLSTATES.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

export function timeoutError(deadline: Deadline, operation: string, cause?: unknown): TimeoutError {
  return new TimeoutError(operation, Date.now() - deadline.startedAt, deadline.at - deadline.startedAt, { cause });
}
