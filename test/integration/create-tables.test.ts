import { describe, expect, it } from 'vitest';
import { DatabaseError, InvalidInputError, createOrcaTables, generateReports } from '../../src/index.js';
import { useOrcaSchema } from '../helpers/database.js';
import { insertJob } from '../helpers/rows.js';

const PRIMARY = 'prefix-orca-primary';
const SECONDARY = 'prefix-orca-secondary';

describe('createOrcaTables', () => {
  const { database: t, schema: fileSchema, extraSchema } = useOrcaSchema({ prefix: 'orca_create_tables', buckets: [PRIMARY] });

  const tablesOf = async (schema: string): Promise<string[]> =>
    (
      await t.query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name COLLATE "C"`,
        [schema],
      )
    ).map((row) => row.name);
  const schemaExists = async (schema: string): Promise<boolean> =>
    (await t.query<{ found: string | null }>('SELECT to_regnamespace($1)::text AS found', [`"${schema}"`]))[0]!.found !== null;

  it('creates the schema and every table, with one partition per bucket, ready for generateReports', async () => {
    // Prepare
    const schema = extraSchema('orca_created');

    // Act
    await createOrcaTables(t.db, { schema, buckets: [PRIMARY] });
    const jobId = await insertJob(t, schema, PRIMARY);
    const counts = await generateReports(t.db, { jobId, orcaArchiveLocation: PRIMARY }, { schema });

    // Assess: the tables of the file's own schema, made from the same DDL in one exec, whose names
    // the schema command's test lists.
    expect(await tablesOf(schema)).toEqual(await tablesOf(fileSchema));
    expect(counts).toEqual({ phantoms: 0, orphans: 0, mismatches: 0 });
  });

  it('runs again without change to the rows, and adds the partition of a new bucket', async () => {
    const schema = extraSchema('orca_again');
    await createOrcaTables(t.db, { schema, buckets: [PRIMARY] });
    const jobId = await insertJob(t, schema, PRIMARY);

    await createOrcaTables(t.db, { schema, buckets: [PRIMARY, SECONDARY] });

    expect(await tablesOf(schema)).toContain('reconcile_s3_object_prefix_orca_secondary');
    expect(await t.query(`SELECT id::int AS id FROM "${schema}".reconcile_job`)).toEqual([{ id: jobId }]);
    expect(await t.query(`SELECT count(*)::int AS n FROM "${schema}".reconcile_status`)).toEqual([{ n: 5 }]);
  });

  it('refuses a bad schema, a bucket whose partition name is not an identifier, or no bucket list, before any statement', async () => {
    const schema = extraSchema('orca_refused');

    const errors = [
      await createOrcaTables(t.db, { schema: 'bad-name', buckets: [] }).catch((error: unknown) => error),
      await createOrcaTables(t.db, { schema, buckets: [PRIMARY, 'my.archive.bucket'] }).catch((error: unknown) => error),
      await createOrcaTables(t.db, { schema } as never).catch((error: unknown) => error),
    ];

    expect(errors.map((error) => [error instanceof InvalidInputError, (error as InvalidInputError).field])).toEqual([
      [true, 'schema'],
      [true, 'bucket'],
      [true, 'options.buckets'],
    ]);
    expect(await schemaExists(schema)).toBe(false);
  });

  it('creates nothing when a statement fails: one transaction, rolled back, as a DatabaseError', async () => {
    // Prepare: a storage_class table of another shape, which the seed rows cannot go into.
    const schema = extraSchema('orca_rolled_back');
    await t.exec(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".storage_class (id int2 PRIMARY KEY)`);

    // Act
    const error = await createOrcaTables(t.db, { schema, buckets: [PRIMARY] }).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as DatabaseError).message).toMatch(/^create the ORCA tables failed: /);
    expect(await tablesOf(schema)).toEqual(['storage_class']);
  });
});
