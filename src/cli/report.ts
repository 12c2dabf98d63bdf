import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { Option } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { DatabaseError, JobNotFoundError, messageOf } from '../errors.js';
import { REPORT_KINDS, type ReportKind, readReport, reportColumns } from '../read-report.js';
import type { Database } from '../database.js';
import { jobExistsSql } from '../sql/jobs.js';
import { quoteSchema } from '../sql/schema.js';
import {
  type CliIO,
  type RegisterCommand,
  CSV_OPTIONS,
  TablePrinter,
  databaseUrlOption,
  exactJson,
  expandedOption,
  flagJobId,
  flagSchema,
  integerFlag,
  isTerminal,
  withDatabase,
} from './common.js';

const REPORT_FORMATS = ['table', 'csv', 'json', 'ndjson'] as const;
type ReportFormat = (typeof REPORT_FORMATS)[number];

const DEFAULT_BATCH_SIZE = 1000;
/** readReport's own bound on rows per FETCH. */
const MAX_BATCH_SIZE = 100_000;

interface ReportFlags {
  databaseUrl?: string;
  jobId: number;
  kind: ReportKind;
  format?: ReportFormat;
  expanded?: boolean;
  out?: string;
  schema: string;
  batchSize: number;
}

export const registerReport: RegisterCommand = (program, io) => {
  program
    .command('report')
    .summary('Stream one report of a job as a table, csv, json or ndjson.')
    .description(
      "Stream one report of a reconciliation job (phantom, orphan or mismatch) in primary-key order, through a server-side cursor: memory stays flat whatever the report's size.",
    )
    .addOption(databaseUrlOption())
    .requiredOption('--job-id <id>', 'reconcile_job id', flagJobId)
    .addOption(new Option('--kind <kind>', 'report to read').choices(REPORT_KINDS).makeOptionMandatory())
    .addOption(
      new Option('--format <format>', 'output format (default: table on a terminal, csv when piped or with --out)').choices(
        REPORT_FORMATS,
      ),
    )
    .addOption(expandedOption())
    .option('--out <file>', 'write to FILE (created or truncated) instead of stdout, with progress on stderr')
    .option('--schema <schema>', 'ORCA schema', flagSchema, 'orca')
    .option(
      '--batch-size <n>',
      `rows fetched from the server at a time, and rows per table block (1 to ${MAX_BATCH_SIZE})`,
      integerFlag('--batch-size', 1, MAX_BATCH_SIZE),
      DEFAULT_BATCH_SIZE,
    )
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
  const format = flags.format ?? (flags.expanded || (flags.out === undefined && isTerminal(io.stdout)) ? 'table' : 'csv');
  let file: ReturnType<typeof createWriteStream> | undefined;
  try {
    await checkJobExists(pool, flags.schema, flags.jobId);
    // The file is created only once the job is known to exist, so a wrong id or an unreachable
    // database leaves an existing file untouched.
    if (flags.out !== undefined) file = await openFile(flags.out);
    const sink = new Sink(file ?? io.stdout, file === undefined);
    const progress = file && flags.out !== undefined ? progressReporter(io.stderr, flags.out) : undefined;
    const formatter = createFormatter(format, flags.kind, new TablePrinter(file ?? io.stdout, flags.expanded === true));

    let rows = 0;
    let batch: Record<string, unknown>[] = [];
    const flush = async () => {
      await sink.write(formatter.rows(batch));
      rows += batch.length;
      batch = [];
      progress?.update(rows);
    };
    await sink.write(formatter.start());
    for await (const row of readReport(pool, { jobId: flags.jobId, kind: flags.kind }, { schema: flags.schema, batchSize: flags.batchSize })) {
      batch.push(row as unknown as Record<string, unknown>);
      if (batch.length >= flags.batchSize) await flush();
      // A reader that closed the pipe (`| head`) wants no more: the loop's exit closes the cursor.
      if (sink.stopped) break;
    }
    if (batch.length > 0 && !sink.stopped) await flush();
    await sink.write(formatter.end(rows));
    if (file) {
      file.end();
      await once(file, 'close');
      file = undefined;
    }
    progress?.done(rows);
  } finally {
    file?.destroy();
  }
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

async function openFile(path: string): Promise<ReturnType<typeof createWriteStream>> {
  const file = createWriteStream(path);
  try {
    await once(file, 'open');
  } catch (error) {
    file.destroy();
    throw new Error(`--out: cannot write ${path}: ${messageOf(error)}`, { cause: error });
  }
  return file;
}

/** Turns rows into text: `start` before the first row, `rows` per block, `end` after the last. */
interface Formatter {
  start(): string;
  rows(rows: readonly Record<string, unknown>[]): string;
  end(rowCount: number): string;
}

const camel = (column: string): string => column.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());

/** A value as csv and table show it: timestamps ISO 8601, numbers plain. */
function cellText(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

function createFormatter(format: ReportFormat, kind: ReportKind, table: TablePrinter): Formatter {
  const columns = reportColumns(kind);
  const keys = columns.map(camel);
  const cells = (rows: readonly Record<string, unknown>[]) => rows.map((row) => keys.map((key) => cellText(row[key])));
  switch (format) {
    case 'csv':
      return {
        start: () => stringify([[...columns]], CSV_OPTIONS),
        rows: (rows) => stringify(cells(rows), CSV_OPTIONS),
        end: () => '',
      };
    case 'ndjson':
      return {
        start: () => '',
        rows: (rows) => rows.map((row) => `${exactJson(row)}\n`).join(''),
        end: () => '',
      };
    case 'json': {
      let first = true;
      return {
        start: () => '[',
        rows: (rows) =>
          rows
            .map((row) => {
              const separator = first ? '\n' : ',\n';
              first = false;
              return separator + exactJson(row);
            })
            .join(''),
        end: (rowCount) => (rowCount === 0 ? ']\n' : '\n]\n'),
      };
    }
    case 'table':
      return {
        start: () => '',
        rows: (rows) => table.block(columns, cells(rows)),
        // An empty report still shows its columns.
        end: (rowCount) => table.end(columns, rowCount),
      };
  }
}

/**
 * Writes to a stream with backpressure: when the stream's buffer is full, waits for 'drain', so
 * at most one block is buffered whatever the report's size.
 */
class Sink {
  /** The reader closed the pipe: stop quietly. */
  stopped = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly isStdout: boolean,
  ) {
    // Left attached: a closed pipe may report EPIPE after the last write, and an unheard 'error'
    // would end the process with a stack trace.
    stream.on('error', (error: Error & { code?: unknown }) => {
      if (this.isStdout && error.code === 'EPIPE') this.stopped = true;
      else this.failure ??= error;
      this.wake?.();
    });
  }

  async write(text: string): Promise<void> {
    this.check();
    if (this.stopped || text === '') return;
    if (this.stream.write(text)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
      this.stream.once('drain', done);
      this.stream.once('close', done);
    });
    this.check();
  }

  private check(): void {
    if (this.failure) throw new Error(`writing the report failed: ${messageOf(this.failure)}`, { cause: this.failure });
    if (!this.stopped && (this.stream as { destroyed?: boolean }).destroyed === true) {
      throw new Error('writing the report failed: the output stream was closed');
    }
  }
}

/** Rows written so far on stderr, at most once a second (four times a second on a terminal). */
function progressReporter(stderr: NodeJS.WritableStream, file: string) {
  const terminal = isTerminal(stderr);
  const interval = terminal ? 250 : 1000;
  let last = Date.now();
  return {
    update(rows: number): void {
      if (Date.now() - last < interval) return;
      last = Date.now();
      stderr.write(terminal ? `\r${rows} rows written so far` : `${rows} rows written so far\n`);
    },
    done(rows: number): void {
      stderr.write(`${terminal ? '\r\u001b[2K' : ''}wrote ${rows} ${rows === 1 ? 'row' : 'rows'} to ${file}\n`);
    },
  };
}
