// The reconcile step's handler publishing its numbers as CloudWatch metrics through Powertools
// Metrics (the Embedded Metric Format: one JSON document per run in the function's log, which
// CloudWatch turns into metrics with no API call).
//
// Each run publishes, with the dimension orcaArchiveLocation:
// - on success: phantoms, orphans, mismatches (Count) and duration (Milliseconds);
// - on failure: failures (Count, 1) with the dimension errorCode (JOB_NOT_FOUND, TIMEOUT, ...).
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { createHandler } from 'orca-reconcile';

const metrics = new Metrics({ namespace: 'ORCA/Reconcile', serviceName: 'orca-reconcile' });

// Built once per container: the pool, the SQS client and the Metrics instance are reused.
const reconcile = createHandler({ logger: console, metrics });

export const handler = async (event: unknown, context: Context) => reconcile(event, context);
