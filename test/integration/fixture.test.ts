import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { leakedClients, useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { insertJob } from '../helpers/rows.js';

const PRIMARY = 'prefix-orca-primary';
const SECONDARY = 'prefix-orca-secondary';

describe('the ORCA schema fixture', () => {
  const fixture = useOrcaSchema({ prefix: 'orca_fixture', buckets: [PRIMARY, SECONDARY] });
  const { database: t, schema } = fixture;

  it('creates the ORCA schema with one inventory partition per bucket', async () => {
    // Act
    const partitions = await t.query<{ name: string }>(
      `SELECT child.relname AS name
       FROM pg_inherits i
       JOIN pg_class child ON child.oid = i.inhrelid
       JOIN pg_class parent ON parent.oid = i.inhparent
       JOIN pg_namespace n ON n.oid = parent.relnamespace
       WHERE n.nspname = $1 AND parent.relname = 'reconcile_s3_object'
       ORDER BY 1`,
      [schema],
    );

    // Assess
    expect(partitions.map((row) => row.name)).toEqual([
      'reconcile_s3_object_prefix_orca_primary',
      'reconcile_s3_object_prefix_orca_secondary',
    ]);
  });

  it('empties the tables a run reads or writes', async () => {
    // Prepare
    await insertJob(t, schema, PRIMARY);

    // Act
    await fixture.emptyTables();

    // Assess
    expect(await t.query(`SELECT count(*)::int AS n FROM "${schema}".reconcile_job`)).toEqual([{ n: 0 }]);
  });

  it.runIf(usingPostgres)('finds a client of the test database or of an added pool that was not released', async () => {
    // Prepare
    const added = fixture.addPool(new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 1 }), 'added');
    const ownClient = await (t.db as pg.Pool).connect();
    const addedClient = await added.connect();

    // Act
    const whileCheckedOut = fixture.poolLeaks();
    ownClient.release();
    addedClient.release();
    const afterRelease = fixture.poolLeaks();

    // Assess
    expect(whileCheckedOut).toEqual([
      expect.stringMatching(/^pool "test database" leaked clients: 1 checked out and not released, 0 connect\(\) calls waiting/),
      'pool "added" leaked clients: 1 checked out and not released, 0 connect() calls waiting (total 1, idle 0) after the test',
    ]);
    expect(afterRelease).toEqual([]);
  });

  it.runIf(usingPostgres)('counts a connect() call still waiting for a client as a leak', async () => {
    // Prepare: a pool of one connection, lent out, and a second caller waiting for it.
    const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
    try {
      const client = await pool.connect();
      const waiting = pool.connect();

      // Act
      const leak = leakedClients(pool, 'one connection');
      client.release();
      (await waiting).release();

      // Assess
      expect(leak).toBe(
        'pool "one connection" leaked clients: 1 checked out and not released, 1 connect() calls waiting (total 1, idle 0) after the test',
      );
      expect(leakedClients(pool, 'one connection')).toBeUndefined();
    } finally {
      await pool.end();
    }
  });
});
