import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runInMemory, useTempDirectory } from '../helpers/cli-io.js';
import { databaseUrlConnectInfo, useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { closedLoopbackPort } from '../helpers/faults.js';
import { type PasswordGate, startPasswordGate } from '../helpers/password-gate.js';
import { insertJob } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';

/** The CLI in this process, with only `env` as its environment. */
const cli = (argv: string[], env: Record<string, string> = {}) => runInMemory(argv, {}, env);

/** The ids `jobs --json` printed. */
const jobIds = (stdout: string): number[] => (JSON.parse(stdout) as { id: number }[]).map((job) => job.id);

/** A password file line field with `:` and `\` escaped, as libpq reads them. */
const escapeField = (text: string): string => text.replace(/[\\:]/g, (character) => `\\${character}`);

describe('orca-reconcile connection settings without a server', () => {
  it('no --database-url, DATABASE_URL or PG* variable is exit 2 naming --database-url and the variables', async () => {
    const result = await cli(['jobs'], { PGPASSWORD: 'alone-says-nothing-about-where' });

    expect([result.code, result.stdout()]).toEqual([2, '']);
    expect(result.stderrLines()).toEqual([
      'orca-reconcile: --database-url is required (or set DATABASE_URL, or PGHOST, PGPORT, PGUSER or PGDATABASE)',
    ]);
  });

  it.each([
    ['PGPORT', 'fivefourthreetwo', 'PGPORT must be a port number from 1 to 65535'],
    ['PGPORT', '70000', 'PGPORT must be a port number from 1 to 65535'],
    ['PGSSLMODE', 'always', 'PGSSLMODE must be disable, allow, prefer, require, verify-ca or verify-full'],
  ])('%s=%s is exit 2 with one line naming the variable, before any connection', async (name, value, message) => {
    const result = await cli(['report', '--job-id', '1', '--kind', 'orphan'], { PGHOST: '127.0.0.1', [name]: value });

    expect([result.code, result.stdout()]).toEqual([2, '']);
    expect(result.stderrLines()).toEqual([`orca-reconcile: ${message}`]);
  });

  it('an unreachable server is one line naming the PG* variables and where they point, never PGPASSWORD', async () => {
    const password = 'pg-Variable-Secret-99';
    const port = await closedLoopbackPort();

    const result = await cli(['jobs'], { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'orca', PGPASSWORD: password });

    expect([result.code, result.stdout()]).toEqual([1, '']);
    expect(result.stderrLines()).toHaveLength(1);
    expect(result.stderrLines()[0]).toMatch(
      new RegExp(`^orca-reconcile: connect to the database of the PG\\* variables \\(orca@127\\.0\\.0\\.1:${port}/orca, password from PGPASSWORD\\) failed: .*ECONNREFUSED`),
    );
    expect(result.stderr()).not.toContain(password);
  });

  it('the help of every command that connects gives the order: flag, DATABASE_URL, PG* variables, password file', async () => {
    for (const command of ['run', 'report', 'jobs', 'schema']) {
      const help = await cli([command, '--help']);

      expect(help.code, command).toBe(0);
      expect(help.stdout(), command).toContain('--database-url, else DATABASE_URL, else (when PGHOST, PGPORT, PGUSER or\nPGDATABASE is set)');
      expect(help.stdout(), command).toContain('PGPASSFILE (default ~/.pgpass)');
    }
    expect((await cli(['demo', '--help'])).stdout()).not.toContain('PGPASSFILE');
  });
});

describe('orca-reconcile connecting with the PG* variables', () => {
  // The CLI connects by itself, so only the real server can answer it.
  const { database: t, schema } = useOrcaSchema({ prefix: 'orca_cli_psql', buckets: [BUCKET], serverOnly: true });
  const server = usingPostgres ? databaseUrlConnectInfo('') : undefined;
  /** The real server as PG* variables. */
  const pgVariables = (): Record<string, string> => ({
    PGHOST: server!.host,
    PGPORT: String(server!.port),
    PGUSER: server!.user_username,
    PGDATABASE: server!.user_database,
  });
  let jobId: number;

  beforeAll(async () => {
    if (usingPostgres) jobId = await insertJob(t, schema, BUCKET);
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it.runIf(usingPostgres)('connects with PGHOST, PGPORT, PGUSER and PGDATABASE of the environment it is given, not of the process', async () => {
    // Prepare: the process's own PG* variables point at a closed port.
    const closed = String(await closedLoopbackPort());
    vi.stubEnv('PGHOST', '127.0.0.1');
    vi.stubEnv('PGPORT', closed);
    vi.stubEnv('PGUSER', 'nobody_here');
    vi.stubEnv('PGDATABASE', 'no_such_database');

    // Act
    const given = await cli(['jobs', '--schema', schema, '--json'], pgVariables());
    const closedGiven = await cli(['jobs', '--schema', schema, '--json'], { ...pgVariables(), PGPORT: closed });

    // Assess
    expect({ code: given.code, stderr: given.stderr() }).toEqual({ code: 0, stderr: '' });
    expect(jobIds(given.stdout())).toEqual([jobId]);
    expect(closedGiven.code).toBe(1);
    expect(closedGiven.stderrLines()[0]).toMatch(/^orca-reconcile: connect to the database of the PG\* variables .*ECONNREFUSED/);
  });

  it.runIf(usingPostgres)('takes --database-url over DATABASE_URL, and DATABASE_URL over the PG* variables', async () => {
    const closedUrl = `postgres://orca@127.0.0.1:${await closedLoopbackPort()}/orca`;
    const broken = { ...pgVariables(), PGPORT: String(await closedLoopbackPort()) };

    const fromEnvironment = await cli(['jobs', '--schema', schema, '--json'], { ...broken, DATABASE_URL: process.env.DATABASE_URL! });
    const fromFlag = await cli(['jobs', '--schema', schema, '--json', '--database-url', process.env.DATABASE_URL!], {
      ...broken,
      DATABASE_URL: closedUrl,
    });

    expect([fromEnvironment.code, fromFlag.code]).toEqual([0, 0]);
    expect(jobIds(fromEnvironment.stdout())).toEqual([jobId]);
    expect(jobIds(fromFlag.stdout())).toEqual([jobId]);
  });

  it.runIf(usingPostgres)('passes PGSSLMODE of the environment it is given to pg: require asks this server for TLS, which it has off', async () => {
    const required = await cli(['jobs', '--schema', schema, '--json'], { ...pgVariables(), PGSSLMODE: 'require' });
    const disabled = await cli(['jobs', '--schema', schema, '--json'], { ...pgVariables(), PGSSLMODE: 'disable' });

    expect(required.code).toBe(1);
    expect(required.stderrLines()).toEqual([
      `orca-reconcile: connect to the database of the PG* variables (${pgVariables()['PGUSER']}@${server!.host}:${server!.port}/${server!.user_database}) failed: The server does not support SSL connections`,
    ]);
    expect(disabled.code).toBe(0);
  });

  // The server trusts loopback connections and never asks for a password, so a connection
  // succeeding would prove nothing about the password file. The CLI connects through a gate
  // (test/helpers/password-gate.ts) that asks for the password and checks it against the role's
  // verifier in pg_authid, as a `password` line of pg_hba.conf would: admitted means the client
  // sent the role's password, refused that it sent another one.
  describe('the password, through a gate that checks it', () => {
    const role = `orca_pgpass_${process.pid}_${randomBytes(4).toString('hex')}`;
    // A ':' and a '\' in it: the file has to escape both.
    const password = `Pg:pass\\${randomBytes(8).toString('hex')}`;
    let roleCreated = false;
    let gate: PasswordGate;
    const directory = useTempDirectory('orca-pgpass-');

    beforeAll(async () => {
      if (!usingPostgres) return;
      await t.exec(`CREATE ROLE "${role}" LOGIN PASSWORD '${password}'`);
      roleCreated = true;
      await t.exec(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}"; GRANT SELECT ON ALL TABLES IN SCHEMA "${schema}" TO "${role}"`);
      gate = await startPasswordGate(t, { host: server!.host, port: Number(server!.port) });
    });
    // Before the fixture's teardown, which drops the schema: the role's grants go first.
    afterAll(async () => {
      await gate?.close();
      if (roleCreated) await t.exec(`DROP OWNED BY "${role}"; DROP ROLE "${role}"`);
    });

    const throughGate = (): Record<string, string> => ({
      PGHOST: '127.0.0.1',
      PGPORT: String(gate.port),
      PGUSER: role,
      PGDATABASE: server!.user_database,
    });
    const line = (host: string, port: string, user: string, secret: string) =>
      `${host}:${port}:${escapeField(server!.user_database)}:${escapeField(user)}:${escapeField(secret)}`;
    async function passwordFile(name: string, lines: string[], mode = 0o600): Promise<string> {
      const file = join(directory(), name);
      await writeFile(file, `${lines.join('\n')}\n`, { mode });
      await chmod(file, mode);
      return file;
    }
    const counts = () => ({ admitted: gate.admitted(), refused: gate.refused() });

    it.runIf(usingPostgres)('sends the password of the first PGPASSFILE line (mode 0600) that matches, escapes read as libpq reads them', async () => {
      // Prepare: a comment, a line of another port and one of another user before the right one.
      const file = await passwordFile('pgpass', [
        `# ${line('127.0.0.1', String(gate.port), role, 'commented-out')}`,
        line('127.0.0.1', '1', role, 'other-port'),
        line('*', '*', 'someone_else', 'other-user'),
        line('127.0.0.1', String(gate.port), role, password),
        line('*', '*', '*', 'later-wildcard'),
      ]);
      const before = counts();

      // Act
      const result = await cli(['jobs', '--schema', schema, '--json'], { ...throughGate(), PGPASSFILE: file });

      // Assess
      expect({ code: result.code, stderr: result.stderr() }).toEqual({ code: 0, stderr: '' });
      expect(jobIds(result.stdout())).toEqual([jobId]);
      expect(counts()).toEqual({ admitted: before.admitted + 1, refused: before.refused });
    });

    it.runIf(usingPostgres)('reads .pgpass in the HOME it is given when PGPASSFILE is unset; * matches any field', async () => {
      const home = join(directory(), 'home');
      await mkdir(home);
      await writeFile(join(home, '.pgpass'), `${line('*', '*', '*', password)}\n`, { mode: 0o600 });
      const before = counts();

      const result = await cli(['jobs', '--schema', schema, '--json'], { ...throughGate(), HOME: home });

      expect({ code: result.code, stderr: result.stderr() }).toEqual({ code: 0, stderr: '' });
      expect(counts()).toEqual({ admitted: before.admitted + 1, refused: before.refused });
    });

    it.runIf(usingPostgres)('takes PGPASSWORD over the password file', async () => {
      const file = await passwordFile('pgpass-wrong', [line('*', '*', '*', 'not-the-password')]);
      const before = counts();

      const result = await cli(['jobs', '--schema', schema, '--json'], { ...throughGate(), PGPASSFILE: file, PGPASSWORD: password });

      expect(result.code).toBe(0);
      expect(counts()).toEqual({ admitted: before.admitted + 1, refused: before.refused });
    });

    it.runIf(usingPostgres)('a wrong password in the file is refused: exit 1, one line naming the file, the password never shown', async () => {
      const wrong = 'Wrong-pgpass-Secret-0042';
      const file = await passwordFile('pgpass-refused', [line('127.0.0.1', String(gate.port), role, wrong)]);
      const before = counts();

      const result = await cli(['jobs', '--schema', schema], { ...throughGate(), PGPASSFILE: file });

      expect([result.code, result.stdout()]).toEqual([1, '']);
      expect(result.stderrLines()).toEqual([
        `orca-reconcile: connect to the database of the PG* variables (${role}@127.0.0.1:${gate.port}/${server!.user_database}, password from ${file}) failed: password authentication failed for user "${role}"`,
      ]);
      expect(result.stderr()).not.toContain(wrong);
      expect(counts()).toEqual({ admitted: before.admitted, refused: before.refused + 1 });
    });

    it.runIf(usingPostgres)('ignores a file others may read, with the warning libpq gives, and sends no password', async () => {
      const file = await passwordFile('pgpass-open', [line('*', '*', '*', password)], 0o644);
      const before = counts();

      const result = await cli(['jobs', '--schema', schema], { ...throughGate(), PGPASSFILE: file });

      expect([result.code, result.stdout()]).toEqual([1, '']);
      expect(result.stderrLines()).toEqual([
        `orca-reconcile: warning: password file "${file}" has group or world access; permissions should be u=rw (0600) or less`,
        `orca-reconcile: connect to the database of the PG* variables (${role}@127.0.0.1:${gate.port}/${server!.user_database}) failed: the server asks for a password and none was given: set PGPASSWORD or add a line for ${role}@127.0.0.1:${gate.port}/${server!.user_database} to ${file}`,
      ]);
      expect(counts()).toEqual(before);
    });
  });
});

describe('orca-reconcile on a schema without the ORCA tables', () => {
  // The CLI connects by itself, so only the real server can answer it.
  const { extraSchema } = useOrcaSchema({ prefix: 'orca_cli_missing', buckets: [BUCKET], serverOnly: true });
  /** Named, never created: the fixture's DROP SCHEMA IF EXISTS finds nothing to drop. */
  const absent = extraSchema('orca_cli_absent');
  const hint = `The ORCA tables were looked for in schema "${absent}" (--schema); on a development or test database, "orca-reconcile schema --schema ${absent}" creates them`;

  it.runIf(usingPostgres).each([
    ['jobs', ['jobs'], 'list jobs'],
    ['report', ['report', '--job-id', '1', '--kind', 'orphan'], 'read job'],
    ['run', ['run', '--job-id', '1', '--location', BUCKET], 'start job'],
  ])('%s: exit 1, one line with the server error (42P01), the schema used and how to create the tables', async (_name, argv, action) => {
    const result = await cli([...argv, '--schema', absent], { DATABASE_URL: process.env.DATABASE_URL! });

    expect([result.code, result.stdout()]).toEqual([1, '']);
    expect(result.stderrLines()).toEqual([`orca-reconcile: ${action} failed: relation "${absent}.reconcile_job" does not exist. ${hint}`]);
  });
});
