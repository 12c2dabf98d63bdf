import type { TestDatabase } from './database.js';
import { insertFile, insertGranule, insertInventory, insertJob } from './factories.js';
import type { TestQueue } from './sqs.js';

/** Key paths of the rows {@link seedOneOfEachReport} makes, by the report each one lands in. */
export interface SeededKeys {
  phantom: string;
  orphan: string;
  mismatch: string;
  match: string;
}

/**
 * A catalog and an inventory listing of `bucket` for `jobId` that differ in exactly one phantom,
 * one orphan and one etag mismatch, plus one file that matches and produces nothing.
 */
export async function seedOneOfEachReport(
  t: TestDatabase,
  schema: string,
  jobId: number,
  bucket: string,
): Promise<SeededKeys> {
  const keys: SeededKeys = {
    phantom: `job-${jobId}/only-in-catalog.h5`,
    orphan: `job-${jobId}/only-in-s3.h5`,
    mismatch: `job-${jobId}/etag-differs.h5`,
    match: `job-${jobId}/same.h5`,
  };
  const granule = await insertGranule(t, schema, { collectionId: 'MOD09GQ___061', granuleId: `G-${jobId}` });
  await insertFile(t, schema, { granuleId: granule, bucket, keyPath: keys.phantom });
  await insertFile(t, schema, { granuleId: granule, bucket, keyPath: keys.mismatch, etag: '"catalog"' });
  await insertFile(t, schema, { granuleId: granule, bucket, keyPath: keys.match });
  await insertInventory(t, schema, { jobId, bucket, keyPath: keys.orphan });
  await insertInventory(t, schema, { jobId, bucket, keyPath: keys.mismatch, etag: '"s3"' });
  await insertInventory(t, schema, { jobId, bucket, keyPath: keys.match });
  return keys;
}

/** Empties every table a reconciliation run reads or writes, so each test starts from nothing. */
export async function truncateReconcileTables(t: TestDatabase, schema: string): Promise<void> {
  const s = `"${schema}"`;
  await t.exec(`TRUNCATE ${s}.files, ${s}.granules, ${s}.reconcile_s3_object, ${s}.reconcile_job,
    ${s}.reconcile_phantom_report, ${s}.reconcile_orphan_report, ${s}.reconcile_catalog_mismatch_report CASCADE`);
}

/**
 * An inventory key that {@link addPoisonedKeyConstraint} makes the orphan report refuse: a real
 * constraint of the test schema that this key violates, so that report generation fails inside
 * PostgreSQL itself.
 */
export const POISONED_KEY = 'poison/orphan.h5';

/** Adds the constraint `orphan_key_is_not_poison`, which no orphan report row of {@link POISONED_KEY} passes. */
export async function addPoisonedKeyConstraint(t: TestDatabase, schema: string): Promise<void> {
  await t.exec(
    `ALTER TABLE "${schema}".reconcile_orphan_report
       ADD CONSTRAINT orphan_key_is_not_poison CHECK (key_path <> '${POISONED_KEY}')`,
  );
}

/**
 * A staged job of `bucket` with one row of each report to find (see {@link seedOneOfEachReport}),
 * and its message received from `queue`; with the task's `input` and the handler's `event` for it.
 */
export async function stageJob(t: TestDatabase, schema: string, bucket: string, queue: TestQueue) {
  const jobId = await insertJob(t, schema, bucket);
  const keys = await seedOneOfEachReport(t, schema, jobId, bucket);
  const message = await queue.sendAndReceiveJob({ jobId, orcaArchiveLocation: bucket });
  const input = { jobId, orcaArchiveLocation: bucket, queueUrl: queue.url, messageReceiptHandle: message.receiptHandle };
  const event = { event: { jobId, orcaArchiveLocation: bucket, messageReceiptHandle: message.receiptHandle } };
  return { jobId, keys, message, input, event };
}
