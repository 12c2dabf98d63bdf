import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { type Command, Option } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { messageOf } from '../errors.js';
import { type CliIO, CSV_OPTIONS, TablePrinter, exactJson, expandedOption, flagSchema, integerFlag, isTerminal } from './common.js';

/** The output formats of the commands that stream rows: `report` and `diff`. */
export const EXPORT_FORMATS = ['table', 'csv', 'json', 'ndjson'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

const DEFAULT_BATCH_SIZE = 1000;
/** The library's own bound on rows per FETCH. */
const MAX_BATCH_SIZE = 100_000;

/**
 * The flags of a command that writes rows: `--format` (whose default `formatDefault` describes),
 * `--expanded`, `--out`, `--schema` and `--batch-size`.
 */
export function addExportOptions(command: Command, formatDefault: string): Command {
  return command
    .addOption(new Option('--format <format>', `output format (default: ${formatDefault})`).choices(EXPORT_FORMATS))
    .addOption(expandedOption())
    .option('--out <file>', 'write to FILE (created or truncated) instead of stdout, with progress on stderr')
    .option('--schema <schema>', 'ORCA schema', flagSchema, 'orca')
    .option(
      '--batch-size <n>',
      `rows fetched from the server at a time, and rows per table block (1 to ${MAX_BATCH_SIZE})`,
      integerFlag('--batch-size', 1, MAX_BATCH_SIZE),
      DEFAULT_BATCH_SIZE,
    );
}

/**
 * The format a command writes when `--format` is absent: `table` to a terminal or with
 * `--expanded`, `fallback` otherwise.
 */
export function defaultFormat<F extends string>(
  flags: { format?: F; out?: string; expanded?: boolean },
  io: CliIO,
  fallback: F,
): F | 'table' {
  return flags.format ?? (flags.expanded || (flags.out === undefined && isTerminal(io.stdout)) ? 'table' : fallback);
}

/** A value as csv and table show it: timestamps ISO 8601, numbers plain, nothing as an empty cell. */
export function cellText(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (value === undefined || value === null) return '';
  return String(value);
}

/**
 * How rows of one command look in csv and table form; json and ndjson write the rows as they are.
 * A table starts a new block, with its own header, wherever `tableHead` changes.
 */
export interface RowLayout<R> {
  csvHeader: readonly string[];
  csvCells(row: R): string[];
  tableHead(row: R): readonly string[];
  tableCells(row: R): string[];
  /** The header an empty table still shows. */
  emptyTableHead: readonly string[];
}

/** Turns rows into text: `start` before the first row, `rows` per block, `end` after the last. */
interface Formatter<R> {
  start(): string;
  rows(rows: readonly R[]): string;
  end(rowCount: number): string;
}

function createFormatter<R>(format: ExportFormat, layout: RowLayout<R>, table: TablePrinter): Formatter<R> {
  switch (format) {
    case 'csv':
      return {
        start: () => stringify([[...layout.csvHeader]], CSV_OPTIONS),
        rows: (rows) => stringify(rows.map((row) => layout.csvCells(row)), CSV_OPTIONS),
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
        rows: (rows) => {
          let text = '';
          for (let from = 0; from < rows.length; ) {
            const head = layout.tableHead(rows[from]!);
            let to = from + 1;
            while (to < rows.length && layout.tableHead(rows[to]!) === head) to += 1;
            text += table.block(head, rows.slice(from, to).map((row) => layout.tableCells(row)));
            from = to;
          }
          return text;
        },
        // An empty export still shows its columns.
        end: (rowCount) => table.end(layout.emptyTableHead, rowCount),
      };
  }
}

/** Where and how {@link exportRows} writes. */
export interface ExportTarget<R> {
  format: ExportFormat;
  layout: RowLayout<R>;
  /** A file to write instead of stdout, with progress on stderr. */
  out: string | undefined;
  /** Rows per block: per write, and per table. */
  batchSize: number;
  /** `--expanded`: tables one field a line, whatever their width. */
  expanded: boolean;
  io: CliIO;
  /** What is written, as a write error names it: `the report`. */
  what: string;
}

/**
 * Writes `rows` in `format` to stdout or to the `out` file, a block of `batchSize` rows at a
 * time, waiting for the output to drain. The file is created only once the first row (or the end)
 * has been read, so a request the library refuses leaves an existing file untouched. A reader
 * that closes stdout (`| head`) ends the export quietly; the loop's end closes the source.
 */
export async function exportRows<R>(rows: AsyncIterable<R>, target: ExportTarget<R>): Promise<void> {
  const { format, layout, out, batchSize, expanded, io, what } = target;
  const source = rows[Symbol.asyncIterator]();
  let file: ReturnType<typeof createWriteStream> | undefined;
  try {
    let next = await source.next();
    if (out !== undefined) file = await openFile(out);
    const sink = new Sink(file ?? io.stdout, file === undefined, what);
    const progress = file && out !== undefined ? progressReporter(io.stderr, out) : undefined;
    const formatter = createFormatter(format, layout, new TablePrinter(file ?? io.stdout, expanded));

    let written = 0;
    let batch: R[] = [];
    const flush = async () => {
      await sink.write(formatter.rows(batch));
      written += batch.length;
      batch = [];
      progress?.update(written);
    };
    await sink.write(formatter.start());
    while (next.done !== true) {
      batch.push(next.value);
      if (batch.length >= batchSize) await flush();
      if (sink.stopped) break;
      next = await source.next();
    }
    if (batch.length > 0 && !sink.stopped) await flush();
    await sink.write(formatter.end(written));
    if (file) {
      file.end();
      await once(file, 'close');
      file = undefined;
    }
    progress?.done(written);
  } finally {
    // Ends the source when the loop did not: its cursor is closed and its connection given back.
    await source.return?.();
    file?.destroy();
  }
}

/**
 * Writes `text`, all of `what`, to stdout or to the `out` file; with a file, stderr then says
 * `wrote <what> to FILE`.
 */
export async function writeOutput(text: string, what: string, out: string | undefined, io: CliIO): Promise<void> {
  if (out === undefined) {
    await new Sink(io.stdout, true, what).write(text);
    return;
  }
  const file = await openFile(out);
  try {
    await new Sink(file, false, what).write(text);
    file.end();
    await once(file, 'close');
  } finally {
    file.destroy();
  }
  io.stderr.write(`wrote ${what} to ${out}\n`);
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

/**
 * Writes to a stream with backpressure: when the stream's buffer is full, waits for 'drain', so
 * at most one block is buffered whatever the number of rows.
 */
class Sink {
  /** The reader closed the pipe: stop quietly. */
  stopped = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly isStdout: boolean,
    private readonly what: string,
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
    if (this.failure) throw new Error(`writing ${this.what} failed: ${messageOf(this.failure)}`, { cause: this.failure });
    if (!this.stopped && (this.stream as { destroyed?: boolean }).destroyed === true) {
      throw new Error(`writing ${this.what} failed: the output stream was closed`);
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
