import { DatabaseError } from '../errors.js';
import { recentJobsSql } from '../sql/jobs.js';
import { quoteSchema } from '../sql/schema.js';
import {
  type CliIO,
  type RegisterCommand,
  databaseUrlOption,
  exactJson,
  flagLocation,
  flagSchema,
  integerFlag,
  printable,
  renderTable,
  withDatabase,
  writeLine,
} from './common.js';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1000;
/** Characters of error_message the table shows; --json shows all of it. */
const ERROR_MESSAGE_WIDTH = 60;

interface JobsFlags {
  databaseUrl?: string;
  location?: string;
  limit: number;
  schema: string;
  json?: boolean;
}

/**
 * A reconcile_job row with its status name and the number of rows in each of its reports. int8
 * columns are bigint: a bigserial id can pass 2^53, where a number would round it.
 */
interface JobSummary {
  id: bigint;
  orcaArchiveLocation: string;
  statusId: number;
  status: string;
  startTime: Date;
  lastUpdate: Date;
  endTime: Date | null;
  errorMessage: string | null;
  phantoms: bigint;
  orphans: bigint;
  mismatches: bigint;
}

export const registerJobs: RegisterCommand = (program, io) => {
  program
    .command('jobs')
    .summary('List recent jobs with their status and report counts.')
    .description('List recent reconciliation jobs, newest first, with their status and the rows in each report.')
    .addOption(databaseUrlOption())
    .option('--location <bucket>', 'only jobs of this ORCA archive bucket', flagLocation)
    .option('--limit <n>', `at most N jobs (1 to ${MAX_LIMIT})`, integerFlag('--limit', 1, MAX_LIMIT), DEFAULT_LIMIT)
    .option('--schema <schema>', 'ORCA schema', flagSchema, 'orca')
    .option('--json', 'print a JSON array (full error messages, camelCase keys) instead of a table')
    .addHelpText(
      'after',
      `
The table truncates error messages to ${ERROR_MESSAGE_WIDTH} characters; --json prints them whole.
Times are ISO 8601 in UTC. phantoms, orphans and mismatches count the job's report rows.

Examples:
  $ orca-reconcile jobs
  $ orca-reconcile jobs --location prefix-orca-primary --limit 5
  $ orca-reconcile jobs --json | jq '.[] | select(.status == "error")'`,
    )
    .action(async (flags: JobsFlags) => {
      await listJobs(flags, io);
    });
};

async function listJobs(flags: JobsFlags, io: CliIO): Promise<void> {
  const jobs = await withDatabase(flags, io, async (pool) => {
    try {
      const { rows } = await pool.query(recentJobsSql(quoteSchema(flags.schema)), [flags.location ?? null, flags.limit]);
      return rows.map(toJobSummary);
    } catch (error) {
      throw new DatabaseError('list jobs', error);
    }
  });
  if (flags.json) {
    writeLine(io.stdout, exactJson(jobs, 2));
    return;
  }
  const head = ['id', 'bucket', 'status', 'start_time', 'last_update', 'end_time', 'error_message', 'phantoms', 'orphans', 'mismatches'];
  writeLine(
    io.stdout,
    renderTable(
      head,
      jobs.map((job) => [
        String(job.id),
        job.orcaArchiveLocation,
        job.status,
        job.startTime.toISOString(),
        job.lastUpdate.toISOString(),
        job.endTime?.toISOString() ?? '',
        truncate(printable(job.errorMessage ?? ''), ERROR_MESSAGE_WIDTH),
        String(job.phantoms),
        String(job.orphans),
        String(job.mismatches),
      ]),
    ),
  );
}

function toJobSummary(raw: Record<string, unknown>): JobSummary {
  // pg returns int8 values (the id and the counts) as text, which BigInt reads exactly.
  return {
    id: BigInt(raw['id'] as string),
    orcaArchiveLocation: String(raw['orca_archive_location']),
    statusId: Number(raw['status_id']),
    status: String(raw['status']),
    startTime: raw['start_time'] as Date,
    lastUpdate: raw['last_update'] as Date,
    endTime: (raw['end_time'] as Date | null) ?? null,
    errorMessage: (raw['error_message'] as string | null) ?? null,
    phantoms: BigInt(raw['phantoms'] as string),
    orphans: BigInt(raw['orphans'] as string),
    mismatches: BigInt(raw['mismatches'] as string),
  };
}

function truncate(text: string, width: number): string {
  const characters = [...text];
  return characters.length <= width ? text : `${characters.slice(0, width - 1).join('')}…`;
}
