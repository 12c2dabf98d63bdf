import { userInfo } from 'node:os';
import pg from 'pg';
import Table from 'cli-table3';
import { type Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DatabaseError, InvalidInputError, sqlStateOf } from '../errors.js';
import { quoteSchema } from '../sql/schema.js';
import { validateArchiveLocation } from '../validation.js';
import { envValue, passwordFilePath, passwordFromFile } from './pgpass.js';

/** Where a command writes, and what it reads from the environment. Tests pass their own. */
export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
}

/** What every command module offers the program. */
export type RegisterCommand = (program: Command, io: CliIO) => void;

/** Exit codes: 0 success, 1 the work failed, 2 the command line was wrong. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * A command line that is wrong in a way no single flag's parser can see: a flag that needs
 * another, or no database URL. It ends the run as commander's own usage errors do.
 */
export function usageError(message: string): CommanderError {
  return new CommanderError(EXIT.usage, 'orca-reconcile.usage', message);
}

// The argument parsers below throw commander's InvalidArgumentError, which commander reports as
// `option '--flag <value>' argument '…' is invalid. <reason>`. Each reason names its flag.

const digitsOnly = (value: string): number => (/^[0-9]+$/.test(value) ? Number(value) : Number.NaN);

/** A parser of job ids for `flag`: positive safe integers. */
export function jobIdFlag(flag: string): (value: string) => number {
  return (value) => {
    const id = digitsOnly(value);
    if (!Number.isSafeInteger(id) || id < 1) {
      throw new InvalidArgumentError(`${flag} must be a positive integer no greater than ${Number.MAX_SAFE_INTEGER}`);
    }
    return id;
  };
}

export const flagJobId = jobIdFlag('--job-id');

/** A parser of whole numbers from `min` to `max` for `flag`. */
export function integerFlag(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const number = digitsOnly(value);
    if (!(number >= min && number <= max)) throw new InvalidArgumentError(`${flag} must be an integer between ${min} and ${max}`);
    return number;
  };
}

/** A parser made of one of the library's checks: its InvalidInputError becomes an InvalidArgumentError. */
export function libraryCheck<T>(check: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return check(value);
    } catch (error) {
      if (error instanceof InvalidInputError) throw new InvalidArgumentError(error.message);
      throw error;
    }
  };
}

export const flagLocation = libraryCheck((value) => validateArchiveLocation(value, '--location'));

export const flagSchema = libraryCheck((value) => {
  quoteSchema(value, '--schema');
  return value;
});

// The user information of a URL: from `scheme://` to the last `@` before white space.
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)\S*@/gi;

/**
 * A message as the one line the CLI prints on stderr: each of `databaseUrls` and its password,
 * and each of `passwords`, removed, the user information of any other URL
 * (`scheme://user:password@host`) masked, line breaks folded and control characters escaped.
 * Usage errors repeat the flag's value, and a database URL pasted into the wrong flag must not
 * show its password.
 */
export function errorLine(message: string, databaseUrls: readonly string[] = [], passwords: readonly string[] = []): string {
  let text = message;
  for (const url of databaseUrls) {
    text = text.split(url).join('<database url>');
    const password = passwordOf(url);
    if (password) text = text.split(password).join('***');
  }
  for (const password of passwords) text = text.split(password).join('***');
  return printable(text.replace(URL_CREDENTIALS, '$1***@').replace(/\s*\n\s*/g, ' ').trim());
}

function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}

/** The flags of a command that connects: `--database-url`, or what the environment says when it is absent. */
export interface DatabaseFlags {
  databaseUrl?: string;
  /** `--schema`: named when a table is missing. */
  schema?: string;
}

/** `--database-url`, the flag {@link withDatabase} reads. */
export const databaseUrlOption = (): Option =>
  new Option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL, then the PG* variables as psql reads them)');

/** The PG* variables that say where to connect; one of them set is enough to use them. */
const PG_LOCATION_VARIABLES = ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE'] as const;

/** How a command finds its database, for the help of every command that connects. */
export const CONNECTION_HELP = `
Connection: --database-url, else DATABASE_URL, else (when PGHOST, PGPORT, PGUSER or
PGDATABASE is set) the PG* variables as psql reads them: PGHOST (default localhost),
PGPORT (5432), PGUSER (your user name), PGDATABASE (the user name), PGSSLMODE, and the
password of PGPASSWORD or else of the password file PGPASSFILE (default ~/.pgpass).`;

/**
 * Runs `work` on a pool of `connections` connections (default one) to the command's database, and ends the pool whatever
 * happens. The database is `--database-url`, else `DATABASE_URL`, else the PG* variables of
 * `io.env` (see {@link connectionOf}); a missing or malformed one is a usage error naming which.
 * One connection is made up front, so an unreachable or refusing server is reported as such
 * before any work starts: as `connect to the database of <source> failed: …`, or with
 * `connectAction` in place of `connect to the database of <source>`.
 */
export async function withDatabase<T>(
  flags: DatabaseFlags,
  io: CliIO,
  work: (pool: pg.Pool) => Promise<T>,
  connectAction?: string,
  connections = 1,
): Promise<T> {
  const connection = connectionOf(flags, io);
  const pool = new pg.Pool({ ...connection.config, max: connections, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => undefined);
  try {
    try {
      (await pool.connect()).release();
    } catch (error) {
      throw new DatabaseError(connectAction ?? `connect to the database of ${connection.source()}`, error);
    }
    return await work(pool).catch((error: unknown) => {
      throw isMissingTable(error) ? new MissingTableError(error, flags.schema ?? 'orca') : error;
    });
  } finally {
    await pool.end();
  }
}

/** SQLSTATE 42P01, undefined_table: the statement names a table the database does not have. */
const UNDEFINED_TABLE = '42P01';

function isMissingTable(error: unknown): error is DatabaseError {
  if (!(error instanceof DatabaseError)) return false;
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof DatabaseError ? cause.sqlState === UNDEFINED_TABLE : sqlStateOf(cause) === UNDEFINED_TABLE) return true;
  }
  return false;
}

/**
 * A {@link DatabaseError} whose cause is a missing table, most often a wrong `--schema` or a
 * database without the ORCA tables: its message says which schema was used and how a test
 * database gets the tables.
 */
export class MissingTableError extends DatabaseError {
  /** The schema the command looked in. */
  readonly schema: string;

  constructor(error: DatabaseError, schema: string) {
    super(error.operation, error.cause);
    this.schema = schema;
    this.message =
      `${error.message}. The ORCA tables were looked for in schema "${schema}" (--schema); on a development or ` +
      `test database, "orca-reconcile schema --schema ${schema}" creates them`;
  }
}

/** The pg settings of the command's database, and where they came from, said without any password. */
interface Connection {
  config: pg.PoolConfig;
  source(): string;
}

/**
 * Where the command connects: `--database-url`, else `DATABASE_URL`, else, when one of PGHOST,
 * PGPORT, PGUSER and PGDATABASE is set in `io.env`, those variables with libpq's defaults and the
 * password of PGPASSWORD or of the password file. The values are read from `io.env` and given to
 * pg explicitly, never left for pg to find in the process environment.
 */
function connectionOf(flags: DatabaseFlags, io: CliIO): Connection {
  if (flags.databaseUrl !== undefined || envValue(io.env, 'DATABASE_URL') !== undefined) {
    const { databaseUrl, source } = databaseUrlOf(flags, io);
    return { config: { connectionString: databaseUrl }, source: () => source };
  }
  if (!PG_LOCATION_VARIABLES.some((name) => envValue(io.env, name) !== undefined)) {
    throw usageError('--database-url is required (or set DATABASE_URL, or PGHOST, PGPORT, PGUSER or PGDATABASE)');
  }
  const host = envValue(io.env, 'PGHOST') ?? 'localhost';
  const port = portOf(envValue(io.env, 'PGPORT'));
  const user = envValue(io.env, 'PGUSER') ?? osUserName();
  const database = envValue(io.env, 'PGDATABASE') ?? user;
  const ssl = sslOf(envValue(io.env, 'PGSSLMODE'));
  const place = `${user}@${host}:${port}/${database}`;
  const fromVariable = envValue(io.env, 'PGPASSWORD');
  if (fromVariable !== undefined) {
    return {
      config: { host, port, user, database, ssl, password: fromVariable },
      source: () => `the PG* variables (${place}, password from PGPASSWORD)`,
    };
  }
  // Read when the server asks for a password, as pg itself does: a server that trusts the client
  // never makes the command open the file.
  const file = passwordFilePath(io.env);
  let passwordFrom = '';
  const password = async (): Promise<string> => {
    const found = await passwordFromFile(file, { host, port, database, user }, (warning) => writeLine(io.stderr, `orca-reconcile: warning: ${warning}`));
    if (found === undefined) {
      throw new Error(`the server asks for a password and none was given: set PGPASSWORD or add a line for ${place} to ${file}`);
    }
    passwordFrom = `, password from ${file}`;
    return found;
  };
  return { config: { host, port, user, database, ssl, password }, source: () => `the PG* variables (${place}${passwordFrom})` };
}

/**
 * PGSSLMODE as libpq means it: `require` encrypts without checking the certificate, `verify-ca`
 * checks its chain, `verify-full` its chain and host name. pg cannot fall back from TLS to a plain
 * connection, so `prefer` and `allow` (and an unset PGSSLMODE) connect without TLS.
 */
function sslOf(mode: string | undefined): pg.PoolConfig['ssl'] {
  switch (mode) {
    case undefined:
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { checkServerIdentity: () => undefined };
    case 'verify-full':
      return true;
    default:
      throw usageError('PGSSLMODE must be disable, allow, prefer, require, verify-ca or verify-full');
  }
}

function portOf(value: string | undefined): number {
  if (value === undefined) return 5432;
  const port = digitsOnly(value);
  if (!(port >= 1 && port <= 65535)) throw usageError('PGPORT must be a port number from 1 to 65535');
  return port;
}

/** The user name libpq uses when PGUSER is unset: the operating system's, not $USER. */
function osUserName(): string {
  try {
    return userInfo().username;
  } catch {
    throw usageError('PGUSER is required: the operating system user has no name');
  }
}

/**
 * The database URL and where it came from, checked without ever repeating it: the password it
 * may hold must not reach the terminal or a log.
 */
function databaseUrlOf(flags: DatabaseFlags, io: CliIO): { databaseUrl: string; source: string } {
  const source = flags.databaseUrl === undefined ? 'DATABASE_URL' : '--database-url';
  const databaseUrl = flags.databaseUrl ?? io.env['DATABASE_URL'];
  if (databaseUrl === undefined || databaseUrl === '') throw usageError('--database-url is required (or set DATABASE_URL)');
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw usageError(`${source} is not a valid URL (expected postgres://user:password@host:port/database)`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw usageError(`${source} must start with postgres:// or postgresql://`);
  }
  return { databaseUrl, source };
}

// JSON.rawJSON (Node 21+, not yet in TypeScript's lib) writes a bigint as the exact number it is.
const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** `value` as JSON with bigint values (int8 columns) as exact JSON numbers, never rounded through a double. */
export function exactJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? rawJson(String(item)) : item), indent);
}

// CRLF records as RFC 4180 has them. With an explicit record delimiter csv-stringify stops quoting
// fields that hold a bare CR or LF unless told to; RFC 4180 wants every line break quoted.
export const CSV_OPTIONS = { record_delimiter: '\r\n', quote_record_delimiter: true } as const;

export function isTerminal(stream: NodeJS.WritableStream): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}

/**
 * Whether `stream` is a file or a pipe: a file descriptor that is not a terminal, as
 * process.stdout is under `> file` or `| program`. A stream of this process (no descriptor) is not.
 */
export function isFileOrPipe(stream: NodeJS.WritableStream): boolean {
  return !isTerminal(stream) && typeof (stream as { fd?: unknown }).fd === 'number';
}

export function writeLine(stream: NodeJS.WritableStream, line: string): void {
  stream.write(`${line}\n`);
}

/**
 * A text cell safe to print: control characters, line and paragraph separators and bidirectional
 * overrides become escapes (`\n`, `\u001b`, `\u202e`), so a key can neither break a table row,
 * send terminal escape sequences, nor show its characters in another order than they are stored.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (character) => {
    if (character === '\n') return '\\n';
    if (character === '\r') return '\\r';
    if (character === '\t') return '\\t';
    return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** `--expanded`, on the commands that print tables. */
export const expandedOption = (): Option =>
  new Option('--expanded', 'print the table one field a line, as psql \\x does, also when piped (default: when it is wider than the terminal)');

/** `--expanded` asks for a table: with another `--format`, or `--json`, it is a usage error. */
export function checkExpanded(flags: { expanded?: boolean; format?: string; json?: boolean }): void {
  if (!flags.expanded) return;
  if (flags.format !== undefined && flags.format !== 'table') {
    throw usageError(`--expanded prints a table: it cannot go with --format ${flags.format}`);
  }
  if (flags.json) throw usageError('--expanded prints a table: it cannot go with --json');
}

/**
 * Tables as psql prints them under `\x auto`: a cli-table3 table while it fits the terminal,
 * else, or always when `expanded`, one record after the other with one `field | value` line per
 * column under a `-[ RECORD n ]` rule; then a `(N rows)` line. Only a terminal has a width: a
 * table written to a file or a pipe is expanded only when asked. Once a block of rows is
 * expanded, the blocks after it are too.
 */
export class TablePrinter {
  private readonly width: number | undefined;
  private records = 0;

  /** `stream` is where the tables go: its width, when it is a terminal, is the one to fit; undefined for a file. */
  constructor(
    stream: NodeJS.WritableStream | undefined,
    private expanded: boolean,
  ) {
    const { isTTY, columns } = (stream ?? {}) as { isTTY?: boolean; columns?: unknown };
    this.width = isTTY === true && typeof columns === 'number' && columns > 0 ? columns : undefined;
  }

  /** A whole table: its rows and the row count. */
  table(head: readonly string[], rows: readonly (readonly string[])[]): string {
    return (rows.length > 0 ? this.block(head, rows) : '') + this.end(head, rows.length);
  }

  /** One block of rows under `head`, ending in a line break. */
  block(head: readonly string[], rows: readonly (readonly string[])[]): string {
    const first = this.records + 1;
    this.records += rows.length;
    if (!this.expanded) {
      const table = renderTable(head, rows);
      // The top border is as wide as the table, one column per character.
      if (this.width === undefined || table.indexOf('\n') <= this.width) return `${table}\n`;
      this.expanded = true;
    }
    return expandedRecords(head, rows, first, this.width);
  }

  /** After the last block: the header of a table without rows, then the row count. */
  end(head: readonly string[], rowCount: number): string {
    const footer = `(${rowCount} ${rowCount === 1 ? 'row' : 'rows'})\n`;
    return rowCount === 0 ? this.block(head, []) + footer : footer;
  }
}

/**
 * Rows as psql's expanded output, numbered from `first`: each under a rule as wide as the widest
 * name and value of the block, but no wider than `width`.
 */
function expandedRecords(head: readonly string[], rows: readonly (readonly string[])[], first: number, width: number | undefined): string {
  const length = (text: string) => [...text].length;
  const names = head.map(printable);
  const nameWidth = Math.max(0, ...names.map(length));
  let valueWidth = 0;
  // One row at a time: a block can hold up to 100,000 rows, too many to spread as arguments.
  const records = rows.map((row) => {
    const values = row.map(printable);
    for (const value of values) valueWidth = Math.max(valueWidth, length(value));
    return values;
  });
  const rule = `${'-'.repeat(nameWidth)}-+-${'-'.repeat(valueWidth)}`;
  let text = '';
  records.forEach((values, index) => {
    const label = `-[ RECORD ${first + index} ]`;
    text += `${(label + rule.slice(label.length)).slice(0, Math.max(label.length, width ?? Infinity))}\n`;
    for (const [column, name] of names.entries()) text += `${name}${' '.repeat(nameWidth - length(name))} | ${values[column] ?? ''}\n`;
  });
  return text;
}

/** A table of `rows` under `head` (cli-table3, no colours), cells passed through {@link printable}. */
export function renderTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const table = new Table({ head: [...head], style: { head: [], border: [] } });
  // One at a time: a block can hold up to 100,000 rows, too many to spread as arguments.
  for (const row of rows) table.push(row.map(printable));
  return table.toString();
}
