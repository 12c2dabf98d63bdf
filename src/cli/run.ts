import type { SQSClient } from '@aws-sdk/client-sqs';
import { InvalidArgumentError } from 'commander';
import { type TaskInput, type TaskOutput, task } from '../index.js';
import { type Logger, silentLogger } from '../types.js';
import {
  type CliIO,
  type RegisterCommand,
  databaseUrlOption,
  flagJobId,
  flagLocation,
  flagSchema,
  isTerminal,
  usageError,
  withDatabase,
  writeLine,
} from './common.js';
import { ProgressBar } from './progress.js';

interface RunFlags {
  databaseUrl?: string;
  jobId: number;
  location: string;
  queueUrl?: string;
  receiptHandle?: string;
  region?: string;
  sqsEndpoint?: string;
  schema: string;
  json?: boolean;
  verbose?: boolean;
  pieces?: number | 'auto';
  concurrency?: number;
}

/**
 * `orca-reconcile run`: runs one reconciliation job through {@link task}, the code path of the
 * Lambda handler, on a database and (optionally) a queue named on the command line.
 */
export const registerRun: RegisterCommand = (program, io) => {
  program
    .command('run')
    .summary('Reconcile one staged job: its reports, its status, and its SQS message deleted.')
    .description(
      'Reconcile one staged job as the Lambda step does: mark it generating reports, write its phantom, ' +
        'orphan and mismatch reports, mark it success, then delete its SQS message when --queue-url and ' +
        '--receipt-handle are given (without them nothing is deleted: a manual re-run). A finished job is ' +
        'not run again; its stored counts are printed.',
    )
    .addOption(databaseUrlOption())
    .requiredOption('--job-id <id>', 'id of the reconcile_job to run', flagJobId)
    .requiredOption('--location <bucket>', 'archive bucket the job belongs to', flagLocation)
    .option('--queue-url <url>', 'queue the job message came from (needs --receipt-handle)')
    .option('--receipt-handle <handle>', 'receipt handle of the job message (needs --queue-url)')
    .option('--region <region>', 'AWS region of the queue (default: $AWS_REGION)')
    .option('--sqs-endpoint <url>', 'SQS endpoint to use instead of AWS, such as a local emulator', flagEndpoint)
    .option('--schema <name>', 'PostgreSQL schema of the ORCA tables', flagSchema, 'orca')
    .option('--pieces <n|auto>', 'divide the job into pieces: a count from 1 to 1024, or auto (see docs/pieces.md)', flagPieces)
    .option('--concurrency <n>', 'pieces compared at once, each on a connection of its own (default 1)', flagConcurrency)
    .option('--json', 'print the result as JSON: {"jobId":…,"phantoms":…,"orphans":…,"mismatches":…}')
    .option('--verbose', "print the library's log lines (JSON fields) on stderr")
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ orca-reconcile run --database-url postgres://orca@127.0.0.1:5432/orca --job-id 42 \\\n' +
        '      --location prefix-orca-primary\n' +
        '  job 42 success: 3 phantoms, 0 orphans, 1 mismatch\n\n' +
        '  $ orca-reconcile run --job-id 42 --location prefix-orca-primary --region us-west-2 \\\n' +
        '      --queue-url https://sqs.us-west-2.amazonaws.com/123456789012/orca-internal-report.fifo \\\n' +
        '      --receipt-handle AQEB... --json\n\n' +
        '  $ orca-reconcile run --job-id 42 --location prefix-orca-primary --pieces auto --concurrency 2\n' +
        '  [############------------]  6/12 pieces  1,500,000 of 3,000,000 files  0:41 left',
    )
    .action(async (flags: RunFlags) => {
      const message = queueFlags(flags, io);
      const logger = flags.verbose ? stderrLogger(io) : silentLogger;
      const input: TaskInput = {
        jobId: flags.jobId,
        orcaArchiveLocation: flags.location,
        ...(message ? { queueUrl: message.queueUrl, messageReceiptHandle: message.receiptHandle } : {}),
      };
      // Connecting first reports an unreachable server at once, instead of after the retries and
      // the attempt to mark the job failed, which could not reach it either.
      if (flags.concurrency !== undefined && flags.pieces === undefined) throw usageError('--concurrency needs --pieces');
      // A bar on a terminal, unless the log lines go there too.
      const bar = flags.pieces !== undefined && isTerminal(io.stderr) && !flags.verbose ? new ProgressBar(io.stderr) : undefined;
      const output = await withDatabase(
        flags,
        io,
        async (pool) => {
          const sqs = message ? await createSqsClient(message) : undefined;
          try {
            return await task(input, {
              database: pool,
              sqs,
              logger,
              schema: flags.schema,
              pieces: flags.pieces,
              concurrency: flags.concurrency,
              onProgress: bar && ((progress) => bar.update(progress)),
            });
          } finally {
            bar?.done();
            sqs?.destroy();
          }
        },
        'connect to the database',
        // One connection for each piece at once, one for the progress reads.
        (flags.concurrency ?? 1) + 1,
      );
      writeLine(io.stdout, flags.json ? JSON.stringify(output) : summary(output, message !== undefined));
    });
};

interface QueueFlags {
  queueUrl: string;
  receiptHandle: string;
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** The message to delete, when the flags name one; each missing piece is a usage error naming its flag. */
function queueFlags(flags: RunFlags, io: CliIO): QueueFlags | undefined {
  if (flags.queueUrl === undefined && flags.receiptHandle === undefined) {
    if (flags.sqsEndpoint !== undefined) throw usageError('--sqs-endpoint needs --queue-url and --receipt-handle');
    return undefined;
  }
  if (flags.queueUrl === undefined) throw usageError('--queue-url is required with --receipt-handle');
  if (flags.receiptHandle === undefined) throw usageError('--receipt-handle is required with --queue-url');
  const region = flags.region ?? io.env['AWS_REGION'];
  if (!region) throw usageError('--region is required with --queue-url (or set AWS_REGION)');
  const accessKeyId = io.env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = io.env['AWS_SECRET_ACCESS_KEY'];
  const sessionToken = io.env['AWS_SESSION_TOKEN'];
  return {
    queueUrl: flags.queueUrl,
    receiptHandle: flags.receiptHandle,
    region,
    endpoint: flags.sqsEndpoint,
    // Keys in the CLI's environment are used as given; without them the SDK's own chain
    // (shared config, SSO, instance role) finds the credentials.
    credentials:
      accessKeyId && secretAccessKey
        ? { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }
        : undefined,
  };
}

function flagPieces(value: string): number | 'auto' {
  if (value === 'auto') return value;
  const pieces = Number(value);
  if (!/^[0-9]+$/.test(value) || pieces < 1 || pieces > 1024) throw new InvalidArgumentError('--pieces must be auto or a whole number from 1 to 1024');
  return pieces;
}

function flagConcurrency(value: string): number {
  const concurrency = Number(value);
  if (!/^[0-9]+$/.test(value) || concurrency < 1 || concurrency > 64) throw new InvalidArgumentError('--concurrency must be a whole number from 1 to 64');
  return concurrency;
}

function flagEndpoint(value: string): string {
  const protocol = URL.canParse(value) ? new URL(value).protocol : undefined;
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new InvalidArgumentError('--sqs-endpoint must be an http:// or https:// URL');
  }
  return value;
}

async function createSqsClient(queue: QueueFlags): Promise<SQSClient> {
  // Loaded only when a message is to be deleted: the other commands start without the SDK.
  const { SQSClient } = await import('@aws-sdk/client-sqs');
  // One request per try, bounded in time: the library retries the delete itself.
  return new SQSClient({
    region: queue.region,
    ...(queue.endpoint ? { endpoint: queue.endpoint } : {}),
    ...(queue.credentials ? { credentials: queue.credentials } : {}),
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000, throwOnRequestTimeout: true },
  });
}

const count = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** `job 42 success: 3 phantoms, 0 orphans, 1 mismatch`, and whether the message was deleted. */
function summary(output: TaskOutput, messageDeleted: boolean): string {
  const counts = [
    count(output.phantoms, 'phantom', 'phantoms'),
    count(output.orphans, 'orphan', 'orphans'),
    count(output.mismatches, 'mismatch', 'mismatches'),
  ].join(', ');
  return `job ${output.jobId} success: ${counts}${messageDeleted ? '; message deleted' : ''}`;
}

/** The library's structured log lines, one per line on stderr: `level message {"field":…}`. */
function stderrLogger(io: CliIO): Logger {
  const line =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void =>
      writeLine(io.stderr, `${level} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}
