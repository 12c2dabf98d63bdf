import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordFilePath, passwordFromFile } from '../../src/cli/pgpass.js';

const TARGET = { host: 'db.example.org', port: 5433, database: 'orca', user: 'orca_user' };

describe('the password file, read as libpq reads it', () => {
  let directory: string;
  let count = 0;
  const warnings: string[] = [];
  const warn = (message: string) => warnings.push(message);

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'orca-pgpass-unit-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  async function lookup(text: string, target = TARGET, mode = 0o600): Promise<string | undefined> {
    count += 1;
    const file = join(directory, `pgpass-${count}`);
    await writeFile(file, text, { mode });
    return passwordFromFile(file, target, warn);
  }

  it('is PGPASSFILE, else .pgpass in HOME, else in the home directory of the OS user', () => {
    expect(passwordFilePath({ PGPASSFILE: '/etc/orca/pgpass', HOME: '/home/a' })).toBe('/etc/orca/pgpass');
    expect(passwordFilePath({ PGPASSFILE: '', HOME: '/home/a' })).toBe('/home/a/.pgpass');
    expect(passwordFilePath({})).toBe(join(homedir(), '.pgpass'));
  });

  it('gives the password of the first line whose host, port, database and user all match', async () => {
    const text = [
      'db.example.org:5432:orca:orca_user:wrong-port',
      'db.example.org:5433:other:orca_user:wrong-database',
      'db.example.org:5433:orca:orca_user:right',
      '*:*:*:*:later',
    ].join('\n');

    expect(await lookup(text)).toBe('right');
  });

  it('matches * in any of the first four fields; a \\* is a literal star', async () => {
    expect(await lookup('*:*:orca:*:star\n')).toBe('star');
    expect(await lookup('db.example.org:\\*:orca:orca_user:escaped-star\n')).toBeUndefined();
  });

  it('reads \\: and \\\\ as a colon and a backslash; the password ends at the next bare colon', async () => {
    const target = { ...TARGET, user: 'a:b' };
    expect(await lookup('*:*:*:a\\:b:pass\\:word\\\\x:ignored\n', target)).toBe('pass:word\\x');
  });

  it('skips comments, blank lines, short lines and CRLF line ends, and gives nothing when no line matches', async () => {
    expect(await lookup('# *:*:*:*:commented\r\n\r\nshort:line\r\n*:*:*:*:crlf\r\n')).toBe('crlf');
    expect(await lookup('other:5433:orca:orca_user:x\n')).toBeUndefined();
    expect(await lookup('*:*:*:*:\n')).toBeUndefined();
  });

  it('gives nothing for a missing file, without a warning', async () => {
    warnings.length = 0;
    expect(await passwordFromFile(join(directory, 'absent'), TARGET, warn)).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it.runIf(process.platform !== 'win32')('ignores a file its group or others may read, and one that is not a plain file, with a warning', async () => {
    warnings.length = 0;
    expect(await lookup('*:*:*:*:open\n', TARGET, 0o640)).toBeUndefined();
    expect(await passwordFromFile(directory, TARGET, warn)).toBeUndefined();
    expect(warnings).toEqual([
      `password file "${join(directory, `pgpass-${count}`)}" has group or world access; permissions should be u=rw (0600) or less`,
      `password file "${directory}" is not a plain file`,
    ]);
  });
});
