import { Option } from 'commander';
import {
  CHANGE_TYPES,
  type ChangeType,
  DEFAULT_CHANGES,
  type JobChangeSummary,
  type ReportChange,
  compareJobs,
  summarizeJobChanges,
} from '../compare.js';
import type { Database } from '../database.js';
import { REPORT_KINDS, type ReportKind, camel, reportColumns } from '../read-report.js';
import {
  type CliIO,
  type RegisterCommand,
  TablePrinter,
  databaseUrlOption,
  exactJson,
  flagJobId,
  jobIdFlag,
  usageError,
  withDatabase,
} from './common.js';
import { type ExportFormat, type RowLayout, addExportOptions, cellText, defaultFormat, exportRows, writeOutput } from './export.js';

interface DiffFlags {
  databaseUrl?: string;
  jobId: number;
  since?: number;
  kind?: ReportKind[];
  change?: ChangeType[];
  summary?: boolean;
  format?: ExportFormat;
  expanded?: boolean;
  out?: string;
  schema: string;
  batchSize: number;
}

export const registerDiff: RegisterCommand = (program, io) => {
  const command = program
    .command('diff')
    .summary("Show what changed in a job's reports since the previous run.")
    .description(
      "Compare a successful job's reports with those of an earlier successful job of the same bucket (by default its previous run) and stream the discrepancies that are new, resolved, unchanged or changed, matched on key_path. With --summary, only the counts.",
    )
    .addOption(databaseUrlOption())
    .requiredOption('--job-id <id>', 'the reconcile_job to compare', flagJobId)
    .option('--since <id>', "the earlier job to compare with (default: the job's previous successful job of the bucket)", jobIdFlag('--since'))
    .addOption(new Option('--kind <kind...>', 'reports to compare (default: all three)').choices(REPORT_KINDS))
    .addOption(
      new Option('--change <change...>', `changes to show (default: ${DEFAULT_CHANGES.join(', ')}; add unchanged to see those still present)`).choices(
        CHANGE_TYPES,
      ),
    )
    .option('--summary', 'print only the number of changes per report');
  addExportOptions(command, 'table on a terminal; csv when piped or with --out, json with --summary')
    .addHelpText(
      'after',
      `
kind, change and key_path come first; then every column of the job's report row (current_...)
and of the previous job's (previous_...), empty where that job has no such row. csv's header
holds the columns of every kind asked for; table starts a block, with its own header, for each
kind and every --batch-size rows; json and ndjson write the library's rows:
{"kind":…,"change":…,"keyPath":…,"current":{…},"previous":{…}}, int8 values as exact numbers.
Rows come report by report (phantom, orphan, mismatch), then in key_path order, byte-wise.
Tables end with "(N rows)"; one wider than the terminal, or any with --expanded, is printed one
field a line as psql's \\x does.
stderr names the two jobs compared: "comparing job 42 with job 41 of BUCKET".

--summary prints a table, or with --format json the object summarizeJobChanges returns:
{"previousJobId":…,"phantoms":{"new":…,"resolved":…,"unchanged":…},"orphans":{…},
"mismatches":{…,"changed":…}}.

Both jobs must exist, have status success and belong to one bucket; a job that is its bucket's
first successful run has no previous run. Each is an error (exit 1) naming the job.

Examples:
  $ orca-reconcile diff --job-id 42
  $ orca-reconcile diff --job-id 42 --summary
  $ orca-reconcile diff --job-id 42 --since 30 --kind mismatch --change changed --format json
  $ orca-reconcile diff --job-id 42 --format ndjson | jq -r 'select(.change == "new") | .keyPath'`,
    )
    .action(async (flags: DiffFlags) => {
      checkFlags(flags);
      await withDatabase(flags, io, (pool) => (flags.summary ? printSummary(pool, flags, io) : exportChanges(pool, flags, io)));
    });
};

function checkFlags(flags: DiffFlags): void {
  if (flags.since !== undefined && flags.since >= flags.jobId) throw usageError('--since must be lower than --job-id');
  if (flags.summary) {
    if (flags.kind !== undefined) throw usageError('--kind cannot be used with --summary, which counts every report');
    if (flags.change !== undefined) throw usageError('--change cannot be used with --summary, which counts every change');
    if (flags.format === 'csv' || flags.format === 'ndjson') throw usageError(`--summary prints a table or json, not --format ${flags.format}`);
  }
}

const comparisonOf = (flags: DiffFlags) => ({ jobId: flags.jobId, ...(flags.since !== undefined && { previousJobId: flags.since }) });

async function exportChanges(pool: Database, flags: DiffFlags, io: CliIO): Promise<void> {
  const kinds = REPORT_KINDS.filter((kind) => flags.kind === undefined || flags.kind.includes(kind));
  const rows = compareJobs(pool, comparisonOf(flags), {
    schema: flags.schema,
    kinds,
    changes: flags.change ?? DEFAULT_CHANGES,
    batchSize: flags.batchSize,
    onJobs: (jobs) => io.stderr.write(`comparing job ${jobs.jobId} with job ${jobs.previousJobId} of ${jobs.orcaArchiveLocation}\n`),
  });
  await exportRows(rows, {
    format: defaultFormat(flags, io, 'csv'),
    layout: changeLayout(kinds),
    out: flags.out,
    batchSize: flags.batchSize,
    expanded: flags.expanded === true,
    io,
    what: 'the changes',
  });
}

/** kind, change, key_path, then each column of the current row and of the previous row. */
const flatColumns = (columns: readonly string[]): string[] => [
  'kind',
  'change',
  'key_path',
  ...columns.map((column) => `current_${column}`),
  ...columns.map((column) => `previous_${column}`),
];

/** The cells of a change row under `columns`: each side's value of each column, empty where it has none. */
function changeCells(columns: readonly string[]): (row: ReportChange) => string[] {
  const keys = columns.map(camel);
  const side = (report: unknown) =>
    report === undefined ? keys.map(() => '') : keys.map((key) => cellText((report as Record<string, unknown>)[key]));
  return (row) => [row.kind, row.change, row.keyPath, ...side(row.current), ...side(row.previous)];
}

/** The columns of every kind asked for in csv, one block per kind in a table. */
function changeLayout(kinds: readonly ReportKind[]): RowLayout<ReportChange> {
  const union = [...new Set(kinds.flatMap((kind) => reportColumns(kind)))];
  const heads = new Map(kinds.map((kind) => [kind, flatColumns(reportColumns(kind))]));
  const kindCells = new Map(kinds.map((kind) => [kind, changeCells(reportColumns(kind))]));
  return {
    csvHeader: flatColumns(union),
    csvCells: changeCells(union),
    tableHead: (row) => heads.get(row.kind)!,
    tableCells: (row) => kindCells.get(row.kind)!(row),
    emptyTableHead: ['kind', 'change', 'key_path'],
  };
}

async function printSummary(pool: Database, flags: DiffFlags, io: CliIO): Promise<void> {
  const summary = await summarizeJobChanges(pool, comparisonOf(flags), { schema: flags.schema });
  const format = defaultFormat(flags, io, 'json');
  const table = new TablePrinter(flags.out === undefined ? io.stdout : undefined, flags.expanded === true);
  const text = format === 'json' ? `${exactJson(summary, 2)}\n` : summaryTable(flags.jobId, summary, table);
  await writeOutput(text, 'the summary', flags.out, io);
}

function summaryTable(jobId: number, summary: JobChangeSummary, printer: TablePrinter): string {
  const counts = (report: string, row: { new: number; resolved: number; unchanged: number; changed?: number }) => [
    report,
    String(row.new),
    String(row.resolved),
    String(row.unchanged),
    row.changed === undefined ? '' : String(row.changed),
  ];
  const table = printer.table(
    ['report', ...CHANGE_TYPES],
    [counts('phantom', summary.phantoms), counts('orphan', summary.orphans), counts('mismatch', summary.mismatches)],
  );
  return `job ${jobId} compared with job ${summary.previousJobId}\n${table}`;
}
