import { Writable } from 'node:stream';
import type { CliIO } from '../../src/cli/common.js';

/** What a CLI run wrote, and the most bytes its stdout ever held unflushed. */
export interface MemoryIO {
  io: CliIO;
  stdout(): string;
  stderr(): string;
  stderrLines(): string[];
  maxBufferedStdout(): number;
}

/**
 * In-memory stdout and stderr for `runCli`. `slow` makes stdout a 1-byte-buffer stream that
 * accepts each chunk 2 ms later, so a writer that ignores backpressure piles bytes up in it;
 * `tty` marks both streams as terminals.
 */
export function memoryIO(env: Record<string, string | undefined> = {}, options: { slow?: boolean; tty?: boolean } = {}): MemoryIO {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let maxBuffered = 0;
  const stdout = new Writable({
    highWaterMark: options.slow ? 1 : 16_384,
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      maxBuffered = Math.max(maxBuffered, this.writableLength);
      // Slower than the database: a writer that does not wait for 'drain' gets ahead of it.
      if (options.slow) setTimeout(callback, 2);
      else callback();
    },
  });
  const stderr = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      err.push(chunk);
      callback();
    },
  });
  if (options.tty) {
    Object.assign(stdout, { isTTY: true });
    Object.assign(stderr, { isTTY: true });
  }
  const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8');
  return {
    io: { stdout, stderr, env },
    stdout: () => text(out),
    stderr: () => text(err),
    stderrLines: () => text(err).split('\n').filter((line) => line !== ''),
    maxBufferedStdout: () => maxBuffered,
  };
}

/**
 * A strict RFC 4180 reader: records end in CRLF (the last one too); a field is either quoted,
 * with quotes doubled inside, or holds no comma, quote, CR or LF. Anything else throws, so a
 * writer that leaves a line break or a quote unquoted fails the test that reads its output.
 */
export function parseCsvStrict(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`not RFC 4180 at offset ${i}: ${why}: ${JSON.stringify(text.slice(Math.max(0, i - 20), i + 20))}`);
  };
  if (text === '') return records;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i += 1;
      for (;;) {
        if (i >= text.length) fail('unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        field += text[i];
        i += 1;
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
        if (text[i] === '"') fail('quote in an unquoted field');
        field += text[i];
        i += 1;
      }
    }
    record.push(field);
    if (text[i] === ',') {
      i += 1;
      continue;
    }
    if (text[i] === '\r' && text[i + 1] === '\n') {
      i += 2;
      records.push(record);
      record = [];
      if (i === text.length) break;
      continue;
    }
    if (i >= text.length) fail('the last record does not end in CRLF');
    fail('a field is followed by something other than a comma or CRLF');
  }
  const width = records[0]!.length;
  records.forEach((fields, index) => {
    if (fields.length !== width) throw new Error(`record ${index} has ${fields.length} fields, the header ${width}`);
  });
  return records;
}

/** The data rows of a cli-table3 table, cells trimmed, the header rows included. */
export function tableRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('│'))
    .map((line) => line.split('│').slice(1, -1).map((cell) => cell.trim()));
}
