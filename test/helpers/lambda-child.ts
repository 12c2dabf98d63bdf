// One Lambda invocation in a process of its own, so that a test can kill it mid-step as a
// container dies: `node --import tsx test/helpers/lambda-child.ts '<event JSON>'`. Reads
// DATABASE_URL, ORCA_SCHEMA, QUEUE_URL and SQS_ENDPOINT; prints the handler's output as JSON.
import { SQSClient } from '@aws-sdk/client-sqs';
import pg from 'pg';
import { createHandler } from '../../src/index.js';

const [eventJson] = process.argv.slice(2);
if (!eventJson) throw new Error('usage: lambda-child.ts EVENT_JSON');
const database = new pg.Pool({ connectionString: process.env['DATABASE_URL'], application_name: 'orca-reconcile-lambda-child', max: 2 });
const sqs = new SQSClient({ region: 'us-east-1', endpoint: process.env['SQS_ENDPOINT'], credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
const handler = createHandler({ database, sqs, queueUrl: process.env['QUEUE_URL'], schema: process.env['ORCA_SCHEMA'], env: {} });
try {
  process.stdout.write(JSON.stringify(await handler(JSON.parse(eventJson))));
} finally {
  await database.end();
  sqs.destroy();
}
