import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { JobNotFoundError, createHandler, task } from '../../src/index.js';
import { useOrcaSchema } from '../helpers/database.js';
import { noWait } from '../helpers/faults.js';
import { captureLogger } from '../helpers/recording.js';
import { seedOneOfEachReport, stageJob, insertJob } from '../helpers/rows.js';

const BUCKET = 'prefix-orca-primary';

/** The EMF documents a Powertools Metrics instance writes to stdout while `work` runs. */
async function emfWrittenDuring(work: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const written: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  });
  try {
    await work();
  } finally {
    write.mockRestore();
  }
  return written
    .flatMap((text) => text.split('\n'))
    .filter((line) => line.startsWith('{') && line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The metric names and units an EMF document declares, and the dimension sets. */
function declared(document: Record<string, unknown>) {
  const aws = document['_aws'] as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  const [directive] = aws.CloudWatchMetrics;
  return {
    namespace: directive!.Namespace,
    dimensions: directive!.Dimensions,
    metrics: Object.fromEntries(directive!.Metrics.map((metric) => [metric.Name, metric.Unit])),
  };
}

describe('run metrics through a real Powertools Metrics instance (EMF)', () => {
  const { database: t, schema, sqs } = useOrcaSchema({ buckets: [BUCKET], sqs: true, emptyTablesBeforeEach: true });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('publishes the report counts and the duration of a successful run, with the bucket as a dimension', async () => {
    // Prepare
    const queue = await sqs.createQueue({ fifo: true });
    const { jobId, event } = await stageJob(t, schema, BUCKET, queue);
    const metrics = new Metrics({ namespace: 'orca-reconcile-test', serviceName: 'reconcile' });
    const handler = createHandler({ database: t.db, sqs: sqs.sqs, env: { INTERNAL_REPORT_QUEUE_URL: queue.url }, schema, retry: noWait, metrics });

    // Act
    let output: unknown;
    const documents = await emfWrittenDuring(async () => {
      output = await handler(event, { getRemainingTimeInMillis: () => 720_000 });
    });

    // Assess
    expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    expect(documents).toHaveLength(1);
    const document = documents[0]!;
    expect(declared(document)).toEqual({
      namespace: 'orca-reconcile-test',
      dimensions: [['service', 'orcaArchiveLocation']],
      metrics: { phantoms: 'Count', orphans: 'Count', mismatches: 'Count', duration: 'Milliseconds' },
    });
    expect(document).toMatchObject({ service: 'reconcile', orcaArchiveLocation: BUCKET, phantoms: 1, orphans: 1, mismatches: 1 });
    expect(document['duration']).toBeGreaterThanOrEqual(0);
  });

  it('publishes one failure with the error code when a run is refused, and no counts', async () => {
    // Prepare
    const metrics = new Metrics({ namespace: 'orca-reconcile-test', serviceName: 'reconcile' });
    const missing = (await insertJob(t, schema, BUCKET)) + 1000;

    // Act
    let error: unknown;
    const documents = await emfWrittenDuring(async () => {
      error = await task({ jobId: missing, orcaArchiveLocation: BUCKET }, { database: t.db, schema, retry: noWait, metrics }).catch(
        (thrown: unknown) => thrown,
      );
    });

    // Assess
    expect(error).toBeInstanceOf(JobNotFoundError);
    expect(documents).toHaveLength(1);
    expect(declared(documents[0]!)).toEqual({
      namespace: 'orca-reconcile-test',
      dimensions: [['service', 'orcaArchiveLocation', 'errorCode']],
      metrics: { failures: 'Count', duration: 'Milliseconds' },
    });
    expect(documents[0]).toMatchObject({ orcaArchiveLocation: BUCKET, errorCode: 'JOB_NOT_FOUND', failures: 1 });
  });

  it('keeps the bucket dimension of one run out of the next run', async () => {
    // Prepare
    const metrics = new Metrics({ namespace: 'orca-reconcile-test', serviceName: 'reconcile' });
    const first = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, first, BUCKET);

    // Act
    const documents = await emfWrittenDuring(async () => {
      await task({ jobId: first, orcaArchiveLocation: BUCKET }, { database: t.db, schema, retry: noWait, metrics });
      await task({ jobId: first + 1000, orcaArchiveLocation: BUCKET }, { database: t.db, schema, retry: noWait, metrics }).catch(
        () => undefined,
      );
    });

    // Assess: two documents, each with its own dimensions only.
    expect(documents.map((document) => declared(document).dimensions)).toEqual([
      [['service', 'orcaArchiveLocation']],
      [['service', 'orcaArchiveLocation', 'errorCode']],
    ]);
  });

  it('never lets a failing metrics sink change the run: a Metrics instance already at its dimension limit', async () => {
    // Prepare: Powertools refuses a 30th dimension with a RangeError.
    const metrics = new Metrics({ namespace: 'orca-reconcile-test', serviceName: 'reconcile' });
    for (let index = 0; index < 28; index += 1) metrics.addDimension(`d${index}`, 'x');
    const jobId = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobId, BUCKET);
    const { logger, lines } = captureLogger();

    // Act
    let output: unknown;
    await emfWrittenDuring(async () => {
      output = await task({ jobId, orcaArchiveLocation: BUCKET }, { database: t.db, schema, retry: noWait, metrics, logger });
    });

    // Assess
    expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
    expect(lines.some((line) => line.startsWith('warn publishing the run metrics failed'))).toBe(true);
  });

  it('refuses a metrics option without the three methods, before any database call', async () => {
    // Act
    const error = await task(
      { jobId: 1, orcaArchiveLocation: BUCKET },
      { database: t.db, schema, metrics: { addMetric: () => undefined } as never },
    ).catch((thrown: unknown) => thrown);

    // Assess
    expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'metrics' });
  });
});
