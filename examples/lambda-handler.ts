// A complete Step Functions task handler for ORCA's reconcile step.
//
// Deploy with INTERNAL_REPORT_QUEUE_URL and DB_CONNECT_INFO_SECRET_ARN set (AWS_REGION is set by
// Lambda). The handler is built once per container: the database secret is read and the pool is
// opened on the first invocation, then reused.
import { createHandler } from 'orca-reconcile';

export const handler = createHandler({ logger: console });
