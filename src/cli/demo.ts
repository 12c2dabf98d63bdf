import type * as PGliteModule from '@electric-sql/pglite';
import type { PGlite } from '@electric-sql/pglite';
import Table from 'cli-table3';
import type * as FauxqsModule from 'fauxqs';
import { mismatchTypeCountsSql, reportCountColumns } from '../sql/reports.js';
import { quoteSchema } from '../sql/schema.js';
import { ConfigurationError } from '../errors.js';
import { type ReportKind, type ReportRows, createOrcaTables, readReportPage, task } from '../index.js';
import { type CliIO, type RegisterCommand, integerFlag, writeLine } from './common.js';
import {
  FILES_PER_GRANULE,
  MAX_FILES,
  MIN_FILES,
  PRIMARY,
  QUEUE_NAME,
  ROWS_SHOWN,
  SCHEMA,
  SECONDARY,
  STATUS_TRAIL_SQL,
  expectedDemoCounts,
  seed,
} from './demo-seed.js';

/** The optional peer dependencies the demo runs on. */
export interface DemoModules {
  pglite: typeof PGliteModule;
  fauxqs: typeof FauxqsModule;
}

const INSTALL_HINT = 'npm install --no-save @electric-sql/pglite fauxqs';

/**
 * Loads PGlite and fauxqs, which the package declares as optional peer dependencies: a missing
 * one is a one-line {@link ConfigurationError} that says how to install both.
 */
export async function loadDemoModules(
  importers: { [K in keyof DemoModules]: () => Promise<DemoModules[K]> } = {
    pglite: () => import('@electric-sql/pglite'),
    fauxqs: () => import('fauxqs'),
  },
): Promise<DemoModules> {
  const load = async <K extends keyof DemoModules>(key: K, name: string): Promise<DemoModules[K]> => {
    try {
      return await importers[key]();
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
      throw new ConfigurationError(
        name,
        `${name} is not installed: install the optional peer dependencies @electric-sql/pglite and fauxqs with ${INSTALL_HINT}`,
        { cause: error },
      );
    }
  };
  return { pglite: await load('pglite', '@electric-sql/pglite'), fauxqs: await load('fauxqs', 'fauxqs') };
}

/**
 * `orca-reconcile demo`: a whole reconciliation run with no server and no AWS account, on PGlite
 * and a fauxqs SQS endpoint on the loopback interface, through the same `task` as the Lambda.
 */
export const registerDemo: RegisterCommand = (program, io) => {
  program
    .command('demo')
    .summary('Run a whole reconciliation in this process on PGlite and a local SQS: no server, no AWS.')
    .description(
      'Run a whole reconciliation with no server and no AWS account: an embedded PostgreSQL (PGlite) gets ' +
        'the ORCA tables, a sample archive and its S3 inventory listing with phantoms, orphans and every ' +
        'kind of mismatch; an SQS emulator (fauxqs) on 127.0.0.1 holds the job message. The job then runs ' +
        'through the same task() as the Lambda step, and the demo prints what happened.',
    )
    .option(
      '--files <n>',
      `catalog files in the sample archive (${MIN_FILES} to ${MAX_FILES})`,
      integerFlag('--files', MIN_FILES, MAX_FILES),
      3000,
    )
    .addHelpText(
      'after',
      '\nNeeds the optional peer dependencies @electric-sql/pglite and fauxqs:\n' +
        `  $ ${INSTALL_HINT}\n\n` +
        'Example:\n  $ npx orca-reconcile demo --files 3000',
    )
    .action(async (flags: { files: number }) => {
      await runDemo(io, flags.files, await loadDemoModules());
    });
};

const q = quoteSchema(SCHEMA);

async function runDemo(io: CliIO, files: number, modules: DemoModules): Promise<void> {
  const started = performance.now();
  const seconds = (from: number) => `${((performance.now() - from) / 1000).toFixed(2)} s`;
  const out = (line = '') => writeLine(io.stdout, line);
  const { ReceiveMessageCommand, SQSClient, SendMessageCommand, CreateQueueCommand, GetQueueAttributesCommand } =
    await import('@aws-sdk/client-sqs');

  const lite = await modules.pglite.PGlite.create();
  let emulator: ReturnType<typeof modules.fauxqs.buildApp> | undefined;
  let sqs: InstanceType<typeof SQSClient> | undefined;
  try {
    // Built and bound here rather than with startFauxqs, which listens on every interface.
    emulator = modules.fauxqs.buildApp({ logger: false });
    const endpoint = await emulator.listen({ port: 0, host: '127.0.0.1' });
    out('orca-reconcile demo: PostgreSQL in this process (PGlite) and SQS on a loopback port (fauxqs); no server, no AWS.');
    out();

    let step = performance.now();
    await createOrcaTables(lite, { schema: SCHEMA, buckets: [PRIMARY, SECONDARY] });
    const { jobId, otherJobId, listed } = await lite.transaction(async (tx) => {
      await tx.exec(STATUS_TRAIL_SQL);
      return seed(tx, files);
    });
    const granules = Math.ceil(files / FILES_PER_GRANULE);
    out(`1. Schema "${SCHEMA}" created with createOrcaTables, one inventory partition per bucket, and seeded (${seconds(step)}):`);
    out(`   ${PRIMARY}    job ${jobId}: ${files} catalog files in ${granules} granules of 2 collections; listing of ${listed.primary} objects`);
    out(`   ${SECONDARY}  job ${otherJobId}: ${listed.secondaryFiles} catalog files on the same key paths with other etags; listing of ${listed.secondary} objects`);
    const secondaryBefore = await secondarySnapshot(lite, otherJobId);

    sqs = new SQSClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'demo', secretAccessKey: 'demo' },
    });
    const { QueueUrl: queueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: QUEUE_NAME,
        Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' },
      }),
    );
    if (!queueUrl) throw new Error('the SQS emulator created no queue');
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({ jobId, orcaArchiveLocation: PRIMARY }),
        MessageGroupId: `reconcile-job-${jobId}`,
      }),
    );
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1 }));
    const receiptHandle = Messages?.[0]?.ReceiptHandle;
    if (!receiptHandle) throw new Error('the job message could not be received from the SQS emulator');
    out(`2. Job ${jobId}'s message sent to the FIFO queue ${QUEUE_NAME} at ${endpoint} and received (receipt handle ${receiptHandle.slice(0, 12)}…).`);

    step = performance.now();
    const output = await task(
      { jobId, orcaArchiveLocation: PRIMARY, queueUrl, messageReceiptHandle: receiptHandle },
      { database: lite, sqs, schema: SCHEMA },
    );
    out(`3. task() ran the job and deleted the message through the SQS API (${seconds(step)}): ${JSON.stringify(output)}`);
    out();

    out(`Status trail of job ${jobId} (recorded by a trigger on reconcile_job):`);
    const trail = await lite.query<{ value: string; changed_at: Date }>(
      `SELECT s.value, t.changed_at FROM ${q}.demo_job_status_trail t JOIN ${q}.reconcile_status s ON s.id = t.status_id
       WHERE t.job_id = $1 ORDER BY t.seq`,
      [jobId],
    );
    const first = trail.rows[0]?.changed_at.getTime() ?? 0;
    for (const { value, changed_at: at } of trail.rows) {
      out(`  ${at.toISOString().slice(11, 23)}Z  +${((at.getTime() - first) / 1000).toFixed(3)} s  ${value}`);
    }
    out();

    const expected = expectedDemoCounts(files);
    const byType = await lite.query<{ discrepancy_type: string; n: number }>(
      mismatchTypeCountsSql(q),
      [jobId],
    );
    const found = new Map(byType.rows.map((row) => [row.discrepancy_type, row.n]));
    const lines: [string, number, number][] = [
      ['phantoms', output.phantoms, expected.phantoms],
      ['orphans', output.orphans, expected.orphans],
      ['mismatches', output.mismatches, expected.mismatches],
      ...Object.entries(expected.byType).map(([type, n]): [string, number, number] => [`  ${type}`, found.get(type) ?? 0, n]),
    ];
    out(`Report rows of job ${jobId} (found / seeded):`);
    for (const [name, got, want] of lines) out(`  ${name.padEnd(36)}${String(got).padStart(6)} / ${want}`);
    const wrong = lines.filter(([, got, want]) => got !== want);
    if (wrong.length) throw new Error(`the reports differ from the seeded archive: ${wrong.map(([name]) => name.trim()).join(', ')}`);

    const attributes = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }),
    );
    const held = (
      ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] as const
    ).map((name) => Number(attributes.Attributes?.[name] ?? Number.NaN));
    const deleted = held.every((n) => n === 0);
    out(
      `SQS message deleted: ${deleted ? 'yes' : 'NO'} (the queue holds ${held[0]} visible, ${held[1]} in flight, ${held[2]} delayed)`,
    );
    if (!deleted) throw new Error('the job message is still in the queue after the run');

    const secondaryAfter = await secondarySnapshot(lite, otherJobId);
    const untouched = secondaryAfter.state === secondaryBefore.state && secondaryAfter.reportRows === 0;
    if (!untouched) throw new Error(`the run changed rows of ${SECONDARY} (job ${otherJobId}, its listing or its reports)`);
    out(
      `${SECONDARY} untouched: job ${otherJobId} still ${secondaryAfter.status}, ` +
        `its ${secondaryAfter.listed} listing rows unchanged, ${secondaryAfter.reportRows} report rows`,
    );

    const classes = await lite.query<{ id: number; value: string }>(`SELECT id, value FROM ${q}.storage_class`);
    const className = new Map(classes.rows.map((row) => [row.id, row.value]));
    await printReport(io, lite, jobId, 'phantom', output.phantoms, (row) => [
      row.keyPath,
      shortEtag(row.orcaEtag),
      String(row.orcaSize),
      className.get(row.orcaStorageClassId) ?? String(row.orcaStorageClassId),
    ]);
    await printReport(io, lite, jobId, 'orphan', output.orphans, (row) => [
      row.keyPath,
      shortEtag(row.etag),
      String(row.sizeInBytes),
      row.storageClass,
    ]);
    await printReport(io, lite, jobId, 'mismatch', output.mismatches, (row) => [
      row.keyPath,
      row.discrepancyType.replaceAll(', ', ',\n'),
      `${shortEtag(row.orcaEtag)}\n${shortEtag(row.s3Etag)}`,
      `${row.orcaSizeInBytes}\n${row.s3SizeInBytes}`,
      `${className.get(row.orcaStorageClassId) ?? row.orcaStorageClassId}\n${row.s3StorageClass}`,
    ]);
    out();
    out(`Done in ${seconds(started)}.`);
  } finally {
    sqs?.destroy();
    await emulator?.close();
    await lite.close();
  }
}

const HEADS: Record<ReportKind, string[]> = {
  phantom: ['key_path', 'orca_etag', 'orca_size', 'orca_storage_class'],
  orphan: ['key_path', 'etag', 'size_in_bytes', 'storage_class'],
  mismatch: ['key_path', 'discrepancy_type', 'etag\n(orca / s3)', 'size_in_bytes\n(orca / s3)', 'storage_class\n(orca / s3)'],
};

async function printReport<K extends ReportKind>(
  io: CliIO,
  lite: PGlite,
  jobId: number,
  kind: K,
  total: number,
  cells: (row: ReportRows[K]) => (string | number)[],
): Promise<void> {
  const { rows } = await readReportPage(lite, { jobId, kind }, { schema: SCHEMA, pageSize: ROWS_SHOWN });
  const table = new Table({
    head: HEADS[kind],
    style: { head: [], border: [] },
    colAligns: HEADS[kind].map((head) => (head.startsWith('size') || head === 'orca_size' ? 'right' : 'left')),
  });
  for (const row of rows) table.push(cells(row));
  writeLine(io.stdout, '');
  writeLine(io.stdout, `${kind[0]!.toUpperCase()}${kind.slice(1)} report, first ${rows.length} of ${total} rows:`);
  writeLine(io.stdout, table.toString());
}

/** `"1679091c5a880faf6fb5e6087eb1b2dc"` as `"1679091c…"`: enough to tell two etags apart. */
const shortEtag = (etag: string): string => (etag.length > 12 ? `${etag.slice(0, 9)}…` : etag);

/** Everything of the secondary bucket that a run of the primary job must leave as it was. */
async function secondarySnapshot(lite: PGlite, jobId: number) {
  const { rows } = await lite.query<{ state: string; status: string; listed: number; phantoms: number; orphans: number; mismatches: number }>(
    `SELECT (SELECT to_jsonb(j)::text FROM ${q}.reconcile_job j WHERE j.id = $1)
            || (SELECT md5(string_agg(to_jsonb(o)::text, ',' ORDER BY o.key_path)) FROM ${q}.reconcile_s3_object o
                WHERE o.orca_archive_location = $2) AS state,
            (SELECT s.value FROM ${q}.reconcile_job j JOIN ${q}.reconcile_status s ON s.id = j.status_id WHERE j.id = $1) AS status,
            (SELECT count(*)::int FROM ${q}.reconcile_s3_object WHERE orca_archive_location = $2) AS listed,
            ${reportCountColumns(q, '$1::int8')}`,
    [jobId, SECONDARY],
  );
  const row = rows[0]!;
  const reportRows = Number(row.phantoms) + Number(row.orphans) + Number(row.mismatches);
  return { state: row.state, status: row.status, listed: row.listed, reportRows };
}

