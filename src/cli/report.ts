import { Option } from 'commander';
import { DatabaseError, JobNotFoundError } from '../errors.js';
import { REPORT_KINDS, type ReportKind, type ReportRows, camel, readReport, reportColumns } from '../read-report.js';
import type { Database } from '../database.js';
import { jobExistsSql } from '../sql/jobs.js';
import { quoteSchema } from '../sql/schema.js';
import { type CliIO, type RegisterCommand, databaseUrlOption, flagJobId, withDatabase } from './common.js';
import { type ExportFormat, type RowLayout, addExportOptions, cellText, defaultFormat, exportRows } from './export.js';

interface ReportFlags {
  databaseUrl?: string;
  jobId: number;
  kind: ReportKind;
  format?: ExportFormat;
  expanded?: boolean;
  out?: string;
  schema: string;
  batchSize: number;
}

export const registerReport: RegisterCommand = (program, io) => {
  const command = program
    .command('report')
    .summary('Stream one report of a job as a table, csv, json or ndjson.')
    .description(
      "Stream one report of a reconciliation job (phantom, orphan or mismatch) in primary-key order, through a server-side cursor: memory stays flat whatever the report's size.",
    )
    .addOption(databaseUrlOption())
    .requiredOption('--job-id <id>', 'reconcile_job id', flagJobId)
    .addOption(new Option('--kind <kind>', 'report to read').choices(REPORT_KINDS).makeOptionMandatory());
  addExportOptions(command, 'table on a terminal, csv when piped or with --out')
    .addHelpText(
      'after',
      `
Columns are the report table's, in table order; csv's header row names them as the table does
(job_id, key_path, ...), json and ndjson use the library's camelCase keys (jobId, keyPath, ...).
Timestamps are ISO 8601 in UTC. csv follows RFC 4180: CRLF line ends, fields holding a comma,
a quote or a line break are quoted, quotes doubled. json is one array, ndjson one object a line.
table is printed in blocks of --batch-size rows, each with its own header, then "(N rows)"; a
table wider than the terminal, or any with --expanded, is printed one field a line as psql's
\\x does. Control characters in a cell are shown escaped (\\n, \\u001b).

Without --out only the data goes to stdout. With --out, stderr shows the rows written so far
(at most once a second, four times on a terminal) and ends with "wrote N rows to FILE". If the
export fails the exit code is 1 and FILE holds only the rows written before the failure.
An unknown job id is an error (exit 1), not an empty report.

Examples:
  $ orca-reconcile report --job-id 42 --kind mismatch
  $ orca-reconcile report --job-id 42 --kind orphan --format csv --out orphans-42.csv
  $ DATABASE_URL=postgres://orca@db:5432/orca orca-reconcile report --job-id 42 --kind phantom --format ndjson | jq .keyPath`,
    )
    .action(async (flags: ReportFlags) => {
      await withDatabase(flags, io, (pool) => exportReport(pool, flags, io));
    });
};

async function exportReport(pool: Database, flags: ReportFlags, io: CliIO): Promise<void> {
  // Checked first: readReport reads an unknown job as an empty report.
  await checkJobExists(pool, flags.schema, flags.jobId);
  await exportRows(readReport(pool, { jobId: flags.jobId, kind: flags.kind }, { schema: flags.schema, batchSize: flags.batchSize }), {
    format: defaultFormat(flags, io, 'csv'),
    layout: reportLayout(flags.kind),
    out: flags.out,
    batchSize: flags.batchSize,
    expanded: flags.expanded === true,
    io,
    what: 'the report',
  });
}

/** A report's columns in table order, in csv and in every table block. */
function reportLayout(kind: ReportKind): RowLayout<ReportRows[ReportKind]> {
  const columns = reportColumns(kind);
  const keys = columns.map(camel);
  const cells = (row: ReportRows[ReportKind]) => keys.map((key) => cellText((row as unknown as Record<string, unknown>)[key]));
  return { csvHeader: columns, csvCells: cells, tableHead: () => columns, tableCells: cells, emptyTableHead: columns };
}

async function checkJobExists(database: Database, schema: string, jobId: number): Promise<void> {
  let found: boolean;
  try {
    found = (await database.query(jobExistsSql(quoteSchema(schema)), [jobId])).rows.length > 0;
  } catch (error) {
    throw new DatabaseError('read job', error);
  }
  if (!found) throw new JobNotFoundError(jobId);
}
