/**
 * Where the library writes its log lines. `console` and a Powertools `Logger` fit as they are.
 * Every method receives a
 * message and, optionally, one object of structured fields. At `info` the library writes one
 * line per successful run, `reconciliation finished`, with the job, the report counts and
 * `durationMs`; failures are logged at `error`, retries at `warn`.
 *
 * @example
 * ```ts
 * import { createHandler, type Logger } from 'orca-reconcile';
 *
 * // One JSON line per log call.
 * const jsonLogger: Logger = {
 *   debug: () => undefined,
 *   info: (message, fields) => console.log(JSON.stringify({ level: 'info', message, ...fields })),
 *   warn: (message, fields) => console.log(JSON.stringify({ level: 'warn', message, ...fields })),
 *   error: (message, fields) => console.log(JSON.stringify({ level: 'error', message, ...fields })),
 * };
 * export const handler = createHandler({ logger: jsonLogger });
 * ```
 * @category Types
 */
export interface Logger {
  // Rest parameters, though the library passes at most one object: so that loggers typed that
  // way, such as Powertools' Logger, fit as they are.
  debug(message: string, ...fields: Record<string, unknown>[]): void;
  info(message: string, ...fields: Record<string, unknown>[]): void;
  warn(message: string, ...fields: Record<string, unknown>[]): void;
  error(message: string, ...fields: Record<string, unknown>[]): void;
}

/** A logger that drops everything: the default, so the library is silent unless asked. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * Options shared by every function that touches the ORCA tables.
 *
 * @example
 * ```ts
 * import { readReportPage } from 'orca-reconcile';
 *
 * // ORCA's tables in the schema "orca_test" instead of "orca":
 * const page = await readReportPage(pool, { jobId: 42, kind: 'phantom' }, { schema: 'orca_test' });
 * ```
 * @category Types
 */
export interface SchemaOptions {
  /** PostgreSQL schema holding the ORCA tables. Default `orca`. */
  schema?: string;
}
