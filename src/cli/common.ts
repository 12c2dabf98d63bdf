import pg from 'pg';
import Table from 'cli-table3';
import { type Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DatabaseError, InvalidInputError } from '../errors.js';
import { quoteSchema } from '../sql/schema.js';
import { validateArchiveLocation } from '../validation.js';

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
 * A message as the one line the CLI prints on stderr: each of `databaseUrls` and its password
 * removed, the user information of any other URL (`scheme://user:password@host`) masked, line
 * breaks folded and control characters escaped. Usage errors repeat the flag's value, and a
 * database URL pasted into the wrong flag must not show its password.
 */
export function errorLine(message: string, databaseUrls: readonly string[] = []): string {
  let text = message;
  for (const url of databaseUrls) {
    text = text.split(url).join('<database url>');
    const password = passwordOf(url);
    if (password) text = text.split(password).join('***');
  }
  return printable(text.replace(URL_CREDENTIALS, '$1***@').replace(/\s*\n\s*/g, ' ').trim());
}

function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}

/** The flags of a command that connects: `--database-url`, or `DATABASE_URL` when it is absent. */
export interface DatabaseFlags {
  databaseUrl?: string;
}

/** `--database-url`, the flag {@link withDatabase} reads. */
export const databaseUrlOption = (): Option => new Option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL)');

/**
 * Runs `work` on a pool of one connection to the command's database, and ends the pool whatever
 * happens. The URL is `--database-url` or, when the flag is absent, `DATABASE_URL`; a missing or
 * malformed one is a usage error naming which. One connection is made up front, so an unreachable
 * or refusing server is reported as such before any work starts: as
 * `connect to the database of <source> failed: …`, or with `connectAction` in place of
 * `connect to the database of <source>`.
 */
export async function withDatabase<T>(
  flags: DatabaseFlags,
  io: CliIO,
  work: (pool: pg.Pool) => Promise<T>,
  connectAction?: string,
): Promise<T> {
  const { databaseUrl, source } = databaseUrlOf(flags, io);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => undefined);
  try {
    try {
      (await pool.connect()).release();
    } catch (error) {
      throw new DatabaseError(connectAction ?? `connect to the database of ${source}`, error);
    }
    return await work(pool);
  } finally {
    await pool.end();
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

/** A table of `rows` under `head` (cli-table3, no colours), cells passed through {@link printable}. */
export function renderTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const table = new Table({ head: [...head], style: { head: [], border: [] } });
  // One at a time: a block can hold up to 100,000 rows, too many to spread as arguments.
  for (const row of rows) table.push(row.map(printable));
  return table.toString();
}
