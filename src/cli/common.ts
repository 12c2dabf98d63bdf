import pg from 'pg';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { DatabaseError, InvalidInputError, messageOf } from '../errors.js';
import { quoteSchema } from '../sql/schema.js';
import { validateArchiveLocation, validateJobId } from '../validation.js';

/** Where a command writes, and what it reads from the environment. Tests pass their own. */
export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
}

/** What every command module offers the program. */
export type RegisterCommand = (program: Command, io: CliIO) => void;

/** A flag value that failed its check; the message names the flag. */
export class FlagError extends InvalidInputError {}

export function flagJobId(value: string, flag = '--job-id'): number {
  const number = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  try {
    return validateJobId(number, flag);
  } catch {
    throw new FlagError(flag, `${flag} must be a positive integer, got "${value.slice(0, 40)}"`);
  }
}

export function flagLocation(value: string, flag = '--location'): string {
  try {
    return validateArchiveLocation(value, flag);
  } catch (error) {
    throw new FlagError(flag, messageOf(error));
  }
}

export function flagSchema(value: string, flag = '--schema'): string {
  try {
    quoteSchema(value, flag);
    return value;
  } catch (error) {
    throw new FlagError(flag, messageOf(error));
  }
}

export function flagPositiveInteger(value: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const number = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < 1 || number > max) {
    throw new FlagError(flag, `${flag} must be an integer between 1 and ${max}, got "${value.slice(0, 40)}"`);
  }
  return number;
}

export function flagChoice<T extends string>(value: string, flag: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new FlagError(flag, `${flag} must be one of ${choices.join(', ')}, got "${value.slice(0, 40)}"`);
  }
  return value as T;
}

/**
 * The database URL and where it came from, checked without ever repeating it: the password it
 * may hold must not reach the terminal or a log.
 */
function databaseUrlOf(flags: DatabaseFlags, io: CliIO): { databaseUrl: string; source: string } {
  const source = flags.databaseUrl === undefined ? 'DATABASE_URL' : '--database-url';
  const databaseUrl = flags.databaseUrl ?? io.env['DATABASE_URL'];
  if (databaseUrl === undefined || databaseUrl === '') {
    throw new FlagError('--database-url', '--database-url is required (or set DATABASE_URL)');
  }
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new FlagError(source, `${source} is not a valid URL (expected postgres://user:password@host:port/database)`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new FlagError(source, `${source} must start with postgres:// or postgresql://`);
  }
  return { databaseUrl, source };
}

/** Removes the URL's password from a message, whatever produced it. */
export function redact(message: string, databaseUrl: string | undefined): string {
  if (!databaseUrl) return message;
  let password: string;
  try {
    password = decodeURIComponent(new URL(databaseUrl).password);
  } catch {
    return message.split(databaseUrl).join('<database url>');
  }
  let text = message.split(databaseUrl).join('<database url>');
  if (password) text = text.split(password).join('***');
  return text;
}

/** The flags of a command that connects: `--database-url`, or `DATABASE_URL` when it is absent. */
export interface DatabaseFlags {
  databaseUrl?: string;
}

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
