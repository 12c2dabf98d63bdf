import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

// The password file as libpq reads it (https://www.postgresql.org/docs/current/libpq-pgpass.html).
// pg reads it too, but only through the pgpass package, from process.env, with its warnings on
// process.stderr, and deprecated for removal in pg 9: the command line reads it itself, from the
// environment it was given.

/** A value of `env`, or undefined when it is unset or empty (libpq treats both alike). */
export function envValue(env: Record<string, string | undefined>, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** The password file libpq would read: `PGPASSFILE`, else `.pgpass` in `HOME` (else the OS user's home). */
export function passwordFilePath(env: Record<string, string | undefined>): string {
  return envValue(env, 'PGPASSFILE') ?? join(envValue(env, 'HOME') ?? homedir(), '.pgpass');
}

/** What a line of the password file is matched against. */
export interface PasswordFileTarget {
  host: string;
  port: number;
  database: string;
  user: string;
}

/**
 * The password of the first line of the file at `path` that matches `target`, or undefined when
 * there is no such line or no such file. As libpq does, a file that is not a plain file, or that
 * its group or others may read (on POSIX systems), is ignored with a warning passed to `warn`.
 */
export async function passwordFromFile(
  path: string,
  target: PasswordFileTarget,
  warn: (message: string) => void,
): Promise<string | undefined> {
  let mode: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) {
      warn(`password file "${path}" is not a plain file`);
      return undefined;
    }
    mode = info.mode;
  } catch {
    return undefined;
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    warn(`password file "${path}" has group or world access; permissions should be u=rw (0600) or less`);
    return undefined;
  }
  const wanted = [target.host, String(target.port), target.database, target.user];
  for (const line of (await readFile(path, 'utf8')).split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = passwordFileFields(line);
    if (fields.length < 5) continue;
    if (wanted.every((value, index) => fields[index]!.raw === '*' || fields[index]!.text === value)) {
      const password = fields[4]!.text;
      return password === '' ? undefined : password;
    }
  }
  return undefined;
}

/**
 * The `:`-separated fields of a password file line, each as written (`raw`, where `*` is the
 * wildcard) and with its `\` escapes removed (`text`).
 */
export function passwordFileFields(line: string): { raw: string; text: string }[] {
  const fields: { raw: string; text: string }[] = [];
  let raw = '';
  let text = '';
  for (let index = 0; index < line.length; index += 1) {
    const character = line[index]!;
    if (character === '\\' && index + 1 < line.length) {
      raw += character + line[index + 1]!;
      text += line[index + 1]!;
      index += 1;
    } else if (character === ':') {
      fields.push({ raw, text });
      raw = '';
      text = '';
    } else {
      raw += character;
      text += character;
    }
  }
  fields.push({ raw, text });
  return fields;
}
