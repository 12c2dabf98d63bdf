import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect } from 'vitest';
import type { CliIO } from '../../src/cli/common.js';
import { runCli } from '../../src/cli/main.js';

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

/** Runs the CLI in this process on {@link memoryIO}: its exit code and what it wrote. */
export async function runInMemory(argv: string[], options: Parameters<typeof memoryIO>[1] = {}, env: Record<string, string> = {}) {
  const output = memoryIO(env, options);
  const code = await runCli(argv, output.io);
  return { code, ...output };
}

/** A temporary directory for the tests of the enclosing describe, removed after them; call the result inside a test. */
export function useTempDirectory(prefix: string): () => string {
  let directory: string | undefined;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    if (directory) await rm(directory, { recursive: true, force: true });
  });
  return () => {
    if (!directory) throw new Error('test fixture: the temporary directory exists only inside the tests');
    return directory;
  };
}

/** Library values as JSON holds them: timestamps as ISO strings, the rest as it is (bigint included). */
export function asJson(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(asJson);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, asJson(item)]));
  return value;
}

/** JSON whose int8 values (jobId and the sizes) are read from their exact source text as bigint: no rounding above 2^53. */
export const parseExact = (text: string): unknown =>
  JSON.parse(text, (key, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' && /(?:^jobId|Size|SizeInBytes|^sizeInBytes)$/.test(key) ? BigInt(context!.source!) : value,
  );

/** A usage error: exit 2, nothing on stdout, one stderr line that names `flag`. */
export function expectUsageError(result: Awaited<ReturnType<typeof runInMemory>>, flag: string): void {
  expect(result.code).toBe(2);
  expect(result.stdout()).toBe('');
  expect(result.stderrLines()).toHaveLength(1);
  expect(result.stderrLines()[0]).toMatch(/^orca-reconcile: /);
  expect(result.stderrLines()[0]).toContain(flag);
}
