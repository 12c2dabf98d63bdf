// The Step Functions task handler of ORCA's reconcile step, logging through Powertools.
//
// Environment of the function:
// - INTERNAL_REPORT_QUEUE_URL: URL of the queue the job message came from (its message is
//   deleted once the reports are committed).
// - DB_CONNECT_INFO_SECRET_ARN: Secrets Manager secret with ORCA's database connection details;
//   read once per container, on the first invocation.
// - AWS_REGION: set by Lambda.
// - POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL (optional): Powertools' own settings. At the
//   default level (INFO) each successful run logs one line, "reconciliation finished", with
//   jobId, orcaArchiveLocation, phantoms, orphans, mismatches, regenerated and durationMs.
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { createHandler } from 'orca-reconcile';

const logger = new Logger({ serviceName: 'orca-reconcile' });

// Built once per container, at module scope: the pool and SQS client are reused by every invocation.
const reconcile = createHandler({ logger });

export const handler = async (event: unknown, context: Context) => {
  logger.addContext(context); // the request id and function name go on every line
  return reconcile(event, context);
};
