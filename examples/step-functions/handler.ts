// The Lambda behind examples/step-functions/state-machine.asl.json: one function serves every
// step of a job reconciled in pieces. The state machine passes the job's event with a `step`
// ('plan', 'piece', 'finish' or 'fail') and, for the later steps, the run id and piece number.
//
// Environment: the same as examples/lambda-handler.ts (INTERNAL_REPORT_QUEUE_URL,
// DB_CONNECT_INFO_SECRET_ARN, AWS_REGION). The database needs the library's progress tables
// once: `npx orca-reconcile schema --progress --print` prints their DDL.
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { type ReconcileStepEvent, type TaskStepOutput, createHandler } from 'orca-reconcile';

const logger = new Logger({ serviceName: 'orca-reconcile' });

// 'auto': about 250,000 files per piece above 3 million files, the single statement below.
// Each invocation compares one piece on one connection; the Map state runs them in parallel.
const reconcile = createHandler({ logger, pieces: 'auto', concurrency: 2 });

export const handler = async (event: ReconcileStepEvent, context: Context): Promise<TaskStepOutput> => {
  logger.addContext(context);
  logger.appendKeys({ step: event.step });
  return reconcile(event, context);
};
