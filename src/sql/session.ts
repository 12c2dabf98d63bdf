/**
 * Bounds every later statement and lock wait of the current transaction. $1: milliseconds, as
 * text. `set_config(..., true)` is `SET LOCAL` with a bound value.
 */
export const LIMIT_TRANSACTION_SQL =
  "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true)";

/**
 * Makes the current transaction read-only (report readers never write) and gives it one snapshot
 * for all its statements, so a read of several statements sees the database as of one moment. A
 * read-only transaction at this level never fails on a serialization conflict.
 */
export const READ_ONLY_SQL = 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY';

/** The server's version as a number, such as 150020. */
export const SERVER_VERSION_SQL = "SELECT current_setting('server_version_num')::int AS version";
