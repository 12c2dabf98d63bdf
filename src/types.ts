/**
 * Where the library writes its log lines. `console` fits, and so does a Powertools `Logger`.
 * Every method receives a message and, optionally, one object of structured fields.
 */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that drops everything: the default, so the library is silent unless asked. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Options shared by every function that touches the ORCA tables. */
export interface SchemaOptions {
  /** PostgreSQL schema holding the ORCA tables. Default `orca`. */
  schema?: string;
}
