import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidInputError,
  OrcaStatus,
  createHandler,
  parseReconcileEvent,
  readReport,
  task,
  type ReportKind,
} from '../../src/index.js';
import { orcaTablesSql } from '../../src/sql/ddl.js';
import { useOrcaSchema, usingPostgres } from '../helpers/database.js';
import { holdAdvisoryLock, jobLockKey, noWait } from '../helpers/faults.js';
import { insertJob, insertReportRows, readJob, reportRow, seedOneOfEachReport } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';
// An old us-east-1 bucket name: upper case and underscores, as S3's legacy rules and ORCA allow
// (ORCA's partition name, every "-" made "_", must still be an identifier: no dots).
const LEGACY_BUCKET = 'Legacy_ORCA_Archive_2011';
const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

describe('boundaries of the run', () => {
  const fixture = useOrcaSchema({ prefix: 'orca_bounds', buckets: [BUCKET, LEGACY_BUCKET], emptyTablesBeforeEach: true });
  const { database: t, schema } = fixture;

  describe('deadlines far ahead', () => {
    it('runs a job whose deadline is 30 days away (beyond the int4 milliseconds of statement_timeout)', async () => {
      // Prepare
      const jobId = await insertJob(t, schema, BUCKET);
      await seedOneOfEachReport(t, schema, jobId, BUCKET);

      // Act
      const output = await task(
        { jobId, orcaArchiveLocation: BUCKET },
        { database: t.db, schema, retry: noWait, deadline: Date.now() + THIRTY_DAYS_MS },
      );

      // Assess
      expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
      expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Success);
    });

    it('runs a job through the handler when the Lambda context reports 30 days left', async () => {
      // Prepare
      const jobId = await insertJob(t, schema, BUCKET);
      await seedOneOfEachReport(t, schema, jobId, BUCKET);
      const sent: unknown[] = [];
      const handler = createHandler({
        database: t.db,
        sqs: { send: async (command) => void sent.push(command.input) },
        queueUrl: 'https://sqs.us-west-2.amazonaws.com/123456789012/orca-internal-report-queue.fifo',
        env: {},
        schema,
        retry: noWait,
      });
      const event = { event: { jobId, orcaArchiveLocation: BUCKET, messageReceiptHandle: 'handle-1' } };

      // Act
      const output = await handler(event, { getRemainingTimeInMillis: () => THIRTY_DAYS_MS });

      // Assess
      expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
      expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Success);
      expect(sent).toHaveLength(1);
    });
  });

  describe('arguments that cannot be read are typed errors', () => {
    const input = () => ({ jobId: 1, orcaArchiveLocation: BUCKET });

    it.each([
      ['no dependencies at all', 'dependencies', () => task(input(), undefined as never)],
      ['dependencies that are a revoked proxy', 'dependencies', () => task(input(), revokedProxy() as never)],
      ['an input that is a revoked proxy', 'input', () => task(revokedProxy() as never, { database: t.db })],
      ['no input at all', 'input', () => task(undefined as never, { database: t.db })],
      [
        'an input whose jobId getter throws',
        'jobId',
        () =>
          task(
            Object.defineProperty({ orcaArchiveLocation: BUCKET }, 'jobId', {
              enumerable: true,
              get() {
                throw new Error('getter exploded');
              },
            }) as never,
            { database: t.db },
          ),
      ],
      ['dependencies without a database', 'database', () => task(input(), {} as never)],
    ])('%s: InvalidInputError naming %s', async (_label, field, call) => {
      // Act
      const error = await call().catch((thrown: unknown) => thrown);

      // Assess
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error).toMatchObject({ code: 'INVALID_INPUT', field });
    });

    it('refuses a revoked proxy as the event, in parseReconcileEvent and in the handler', async () => {
      // Prepare
      const handler = createHandler({ database: t.db, sqs: { send: async () => undefined }, queueUrl: 'q', env: {}, schema });

      // Act
      let parsed: unknown;
      try {
        parseReconcileEvent(revokedProxy());
      } catch (thrown) {
        parsed = thrown;
      }
      const handled = await handler(revokedProxy(), undefined).catch((thrown: unknown) => thrown);

      // Assess
      for (const error of [parsed, handled]) {
        expect(error).toBeInstanceOf(InvalidInputError);
        expect(error).toMatchObject({ field: 'event' });
      }
    });
  });

  it('reconciles a bucket with a legacy name (upper case, underscores)', async () => {
    // Prepare
    const jobId = await insertJob(t, schema, LEGACY_BUCKET);
    await seedOneOfEachReport(t, schema, jobId, LEGACY_BUCKET);
    const other = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, other, BUCKET);

    // Act
    const output = await task({ jobId, orcaArchiveLocation: LEGACY_BUCKET }, { database: t.db, schema, retry: noWait });

    // Assess
    expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
  });

  describe.runIf(usingPostgres)('on one pg Client', () => {
    let client: pg.Client;
    beforeAll(async () => {
      client = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await client.connect();
    });
    afterAll(async () => {
      await client?.end();
    });

    const seedReports = async (jobId: number, count: number) => {
      for (const kind of ['phantom', 'orphan'] as const satisfies readonly ReportKind[]) {
        await insertReportRows(t, schema, kind, Array.from({ length: count }, (_unused, index) => reportRow(kind, jobId, index)));
      }
    };

    it('reads a whole report inside the loop of another on the same client without ending the outer read', async () => {
      // Prepare
      const jobId = await insertJob(t, schema, BUCKET);
      await seedReports(jobId, 7);

      // Act
      const outer: string[] = [];
      const inner: string[][] = [];
      for await (const phantom of readReport(client, { jobId, kind: 'phantom' }, { schema, batchSize: 2 })) {
        outer.push(phantom.keyPath);
        const orphans: string[] = [];
        for await (const orphan of readReport(client, { jobId, kind: 'orphan' }, { schema, batchSize: 3 })) orphans.push(orphan.keyPath);
        inner.push(orphans);
      }

      // Assess
      expect(outer).toHaveLength(7);
      expect(new Set(outer).size).toBe(7);
      expect(inner).toHaveLength(7);
      for (const orphans of inner) expect(orphans).toHaveLength(7);
      // The client is left outside any transaction: a write commits on its own.
      const { rows } = await client.query<{ in_transaction: boolean }>(
        "SELECT now() <> statement_timestamp() AS in_transaction",
      );
      expect(rows[0]!.in_transaction).toBe(false);
    });

    it('reads two reports consumed in turns on the same client, each complete', async () => {
      // Prepare
      const jobId = await insertJob(t, schema, BUCKET);
      await seedReports(jobId, 5);
      const phantoms = readReport(client, { jobId, kind: 'phantom' }, { schema, batchSize: 1 })[Symbol.asyncIterator]();
      const orphans = readReport(client, { jobId, kind: 'orphan' }, { schema, batchSize: 1 })[Symbol.asyncIterator]();

      // Act: one row of each in turn; the phantom read ends first, while the orphan read goes on.
      const read: { phantom: number; orphan: number } = { phantom: 0, orphan: 0 };
      for (;;) {
        const [p, o] = [await phantoms.next(), await orphans.next()];
        if (!p.done) read.phantom += 1;
        if (!o.done) read.orphan += 1;
        if (p.done && o.done) break;
      }

      // Assess
      expect(read).toEqual({ phantom: 5, orphan: 5 });
    });
  });

  it.runIf(usingPostgres)('keeps the job locks of two schemas apart: the same job id in another schema does not wait', async () => {
    // Prepare: the same job id in a second schema, whose job lock another session holds.
    const otherSchema = fixture.extraSchema('orca_bounds_other');
    await t.exec(orcaTablesSql(otherSchema, [BUCKET]));
    const jobId = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobId, BUCKET);
    await t.query(
      `INSERT INTO "${otherSchema}".reconcile_job (id, orca_archive_location, status_id, inventory_creation_time, start_time, last_update)
       VALUES ($1, $2, 2, now(), now(), now())`,
      [jobId, BUCKET],
    );
    const holder = await holdAdvisoryLock(jobLockKey(otherSchema, jobId));
    try {
      // Act: a short deadline, so that waiting on the other schema's lock would time out.
      const output = await task(
        { jobId, orcaArchiveLocation: BUCKET },
        { database: t.db, schema, retry: noWait, deadline: Date.now() + 3_000 },
      );

      // Assess
      expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    } finally {
      await holder.release();
    }
  });
});
