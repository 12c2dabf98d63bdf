import { Option } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { DatabaseError } from '../errors.js';
import type pg from 'pg';
import { recentJobsSql } from '../sql/jobs.js';
import { RUN_TABLE, progressTablesExistSql, runProgressSql } from '../sql/pieces.js';
import { type QuotedSchema, quoteSchema } from '../sql/schema.js';
import {
  type CliIO,
  type RegisterCommand,
  CSV_OPTIONS,
  TablePrinter,
  databaseUrlOption,
  exactJson,
  expandedOption,
  flagLocation,
  flagSchema,
  integerFlag,
  isFileOrPipe,
  printable,
  usageError,
  withDatabase,
  writeLine,
} from './common.js';
import { cellText } from './export.js';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1000;
/** Characters of error_message the table shows; csv and json show all of it. */
const ERROR_MESSAGE_WIDTH = 60;

const JOBS_FORMATS = ['table', 'csv', 'json'] as const;
type JobsFormat = (typeof JOBS_FORMATS)[number];

interface JobsFlags {
  databaseUrl?: string;
  location?: string;
  limit: number;
  schema: string;
  format?: JobsFormat;
  json?: boolean;
  expanded?: boolean;
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
  /** The job's newest pieced run, or null when it never ran in pieces. */
  run: RunSummary | null;
}

/** How far a job's newest pieced run has got. */
interface RunSummary {
  runId: bigint;
  pieces: number;
  piecesDone: number;
  filesDone: bigint;
  finished: boolean;
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
    .addOption(
      new Option('--format <format>', 'output format (default: table, csv when stdout is a file or a pipe)').choices(JOBS_FORMATS),
    )
    .option('--json', 'the same as --format json')
    .addOption(expandedOption())
    .addHelpText(
      'after',
      `
The table truncates error messages to ${ERROR_MESSAGE_WIDTH} characters; csv and json print them whole.
A table wider than the terminal is printed expanded, one field a line, as psql's \\x auto does.
csv (RFC 4180) has a header row of snake_case names, json an array of objects with camelCase
keys; both hold the same fields. Times are ISO 8601 in UTC. phantoms, orphans and mismatches
count the job's report rows. pieces tells how far the job's newest pieced run has got (5/12, or
12/12 done once it finished); json gives that run as an object, or null.

Examples:
  $ orca-reconcile jobs
  $ orca-reconcile jobs --location prefix-orca-primary --limit 5
  $ orca-reconcile jobs > jobs.csv
  $ orca-reconcile jobs --json | jq '.[] | select(.status == "error")'`,
    )
    .action(async (flags: JobsFlags) => {
      await listJobs(flags, io);
    });
};

/** The fields of a job in csv and json order; csv names them in snake_case. */
const FIELDS = [
  'id',
  'orcaArchiveLocation',
  'statusId',
  'status',
  'startTime',
  'lastUpdate',
  'endTime',
  'errorMessage',
  'phantoms',
  'orphans',
  'mismatches',
  'run',
] as const satisfies readonly (keyof JobSummary)[];

/** A run as one cell: `5/12` pieces of an unfinished run, `12/12 done` of a finished one. */
const runCell = (run: RunSummary | null): string => (run ? `${run.piecesDone}/${run.pieces}${run.finished ? ' done' : ''}` : '');

const snake = (key: string): string => key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

function formatOf(flags: JobsFlags, io: CliIO): JobsFormat {
  if (flags.json && flags.format !== undefined && flags.format !== 'json') {
    throw usageError(`--json is --format json: it cannot go with --format ${flags.format}`);
  }
  if (flags.json) return 'json';
  return flags.format ?? (flags.expanded || !isFileOrPipe(io.stdout) ? 'table' : 'csv');
}

async function listJobs(flags: JobsFlags, io: CliIO): Promise<void> {
  const format = formatOf(flags, io);
  const jobs = await withDatabase(flags, io, async (pool) => {
    try {
      const s = quoteSchema(flags.schema);
      const { rows } = await pool.query(recentJobsSql(s), [flags.location ?? null, flags.limit]);
      const runs = await newestRuns(pool, s, rows.map((row) => String(row['id'])));
      return rows.map((row) => toJobSummary(row, runs.get(String(row['id'])) ?? null));
    } catch (error) {
      throw new DatabaseError('list jobs', error);
    }
  });
  if (format === 'json') {
    writeLine(io.stdout, exactJson(jobs, 2));
    return;
  }
  if (format === 'csv') {
    const cell = (job: JobSummary, key: (typeof FIELDS)[number]) => (key === 'run' ? runCell(job.run) : cellText(job[key]));
    io.stdout.write(stringify([FIELDS.map((key) => (key === 'run' ? 'pieces' : snake(key))), ...jobs.map((job) => FIELDS.map((key) => cell(job, key)))], CSV_OPTIONS));
    return;
  }
  const head = ['id', 'bucket', 'status', 'start_time', 'last_update', 'end_time', 'error_message', 'phantoms', 'orphans', 'mismatches', 'pieces'];
  io.stdout.write(
    new TablePrinter(io.stdout, flags.expanded === true).table(
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
        runCell(job.run),
      ]),
    ),
  );
}

/**
 * The newest pieced run of each job, by job id. Empty when the schema has no progress tables
 * (an ORCA database that never ran in pieces).
 */
async function newestRuns(pool: pg.Pool, s: QuotedSchema, jobIds: string[]): Promise<Map<string, RunSummary>> {
  const { rows: present } = await pool.query(progressTablesExistSql, [`${s}.${RUN_TABLE}`]);
  if (!present[0]?.present || jobIds.length === 0) return new Map();
  const { rows } = await pool.query(runProgressSql(s), [jobIds]);
  return new Map(
    rows.map((row) => [
      String(row['job_id']),
      {
        runId: BigInt(row['run_id'] as string),
        pieces: Number(row['pieces']),
        piecesDone: Number(row['pieces_done']),
        filesDone: BigInt(row['files_done'] as string),
        finished: row['finished_at'] !== null,
      },
    ]),
  );
}

function toJobSummary(raw: Record<string, unknown>, run: RunSummary | null): JobSummary {
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
    run,
  };
}

function truncate(text: string, width: number): string {
  const characters = [...text];
  return characters.length <= width ? text : `${characters.slice(0, width - 1).join('')}…`;
}
