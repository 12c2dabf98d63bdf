import type { DeleteMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DatabaseError,
  InvalidInputError,
  InventoryNotLoadedError,
  JobNotFoundError,
  LocationMismatchError,
  OrcaStatus,
  createHandler,
  generateReports,
  task,
  type OrcaReconcileError,
  type SqsSender,
} from '../../src/index.js';
import { useOrcaSchema } from '../helpers/database.js';
import { noWait } from '../helpers/faults.js';
import { captureLogger, recordCalls } from '../helpers/recording.js';
import { insertJob, readJob, seedOneOfEachReport } from '../helpers/rows.js';
import type { TestQueue } from '../helpers/sqs.js';

// A staged job on BUCKET that must never run; a finished job on BUCKET_DONE that valid events
// may re-run (a re-run of a finished job writes nothing); a job still loading its listing.
const BUCKET = 'prefix-orca-primary';
const BUCKET_DONE = 'prefix-orca-done';
const BUCKET_LOADING = 'prefix-orca-loading';
// Odd but valid bucket names that a run binds into the report statement.
const ODD_BUCKETS = ['0--drop-table-files', 'select-1--or-1-1'] as const;
const MISSING_JOB_ID = Number.MAX_SAFE_INTEGER;
const TEN_MB = 10 * 1024 * 1024;
const SQL = "'; DROP TABLE files; --";
const HANDLE = 'AQEB-hostile-input-handle';
const prototypeNamesAtStart = Object.getOwnPropertyNames(Object.prototype).sort();

interface Jobs {
  staged: number;
  done: number;
  loading: number;
}

type RefusalClass = abstract new (...args: never[]) => OrcaReconcileError;

/** What the handler must do with one event. */
type Outcome =
  /** InvalidInputError naming `field`, before any database or queue call. */
  | { kind: 'rejected'; field: string }
  /** Read as plain values, the message is refused with a typed error and nothing changes. */
  | { kind: 'refused'; error: RefusalClass }
  /** Read as plain values, the finished job's stored counts come back and the handle goes to SQS as given. */
  | { kind: 'succeeds' };

interface Row {
  category: string;
  label: string;
  event: (jobs: Jobs) => unknown;
  outcome: Outcome;
}
type Rows = Array<Omit<Row, 'category'>>;

const rejected = (field: string): Outcome => ({ kind: 'rejected', field });
const refused = (error: RefusalClass): Outcome => ({ kind: 'refused', error });
const succeeds: Outcome = { kind: 'succeeds' };

const doneFields = (jobs: Jobs): Record<string, unknown> => ({
  jobId: jobs.done,
  orcaArchiveLocation: BUCKET_DONE,
  messageReceiptHandle: HANDLE,
});
/** A valid event for the finished job with one field replaced. */
const withField =
  (key: string, value: unknown) =>
  (jobs: Jobs): unknown => ({ event: { ...doneFields(jobs), [key]: value } });
/** A valid event for the finished job with one field left out. */
const without =
  (key: string) =>
  (jobs: Jobs): unknown => {
    const fields = doneFields(jobs);
    delete fields[key];
    return { event: fields };
  };
/** JSON text of the finished job's fields, without its surrounding braces. */
const doneJson = (jobs: Jobs, omit?: string): string =>
  Object.entries(doneFields(jobs))
    .filter(([key]) => key !== omit)
    .map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`)
    .join(', ');

const wrapperRows: Rows = [
  { label: 'undefined', event: () => undefined, outcome: rejected('event') },
  { label: 'boolean true', event: () => true, outcome: rejected('event') },
  { label: 'the number 42', event: () => 42, outcome: rejected('event') },
  { label: 'a BigInt', event: () => 10n, outcome: rejected('event') },
  { label: 'a 10 MB string', event: () => 'x'.repeat(TEN_MB), outcome: rejected('event') },
  { label: 'a function-like string', event: () => '() => ({ event: {} })', outcome: rejected('event') },
  { label: 'an array holding a valid wrapper', event: (jobs) => [{ event: doneFields(jobs) }], outcome: rejected('event') },
  { label: 'a Map with an "event" entry', event: (jobs) => new Map([['event', doneFields(jobs)]]), outcome: rejected('event') },
  { label: 'a Date', event: () => new Date(0), outcome: rejected('event') },
  { label: '"Event" instead of "event"', event: (jobs) => ({ Event: doneFields(jobs) }), outcome: rejected('event') },
  { label: 'event: true', event: () => ({ event: true }), outcome: rejected('event') },
  { label: 'event: 0', event: () => ({ event: 0 }), outcome: rejected('event') },
  { label: 'event: a 10 MB string', event: () => ({ event: 'x'.repeat(TEN_MB) }), outcome: rejected('event') },
  { label: 'event: its JSON text', event: (jobs) => ({ event: JSON.stringify(doneFields(jobs)) }), outcome: rejected('event') },
  {
    label: 'event: an array carrying the fields as properties',
    event: (jobs) => ({ event: Object.assign([], doneFields(jobs)) }),
    outcome: rejected('event'),
  },
  {
    label: 'a null-prototype wrapper without "event"',
    event: (jobs) => Object.assign(Object.create(null) as object, doneFields(jobs)),
    outcome: rejected('event'),
  },
];

const nestedRows: Rows = [
  { label: 'the event wrapped twice', event: (jobs) => ({ event: { event: doneFields(jobs) } }), outcome: rejected('event.jobId') },
  { label: 'an SQS-style body string', event: (jobs) => ({ body: JSON.stringify({ event: doneFields(jobs) }) }), outcome: rejected('event') },
  { label: 'jobId wrapped in an object', event: (jobs) => withField('jobId', { value: jobs.done })(jobs), outcome: rejected('event.jobId') },
  {
    label: 'fields nested one level too deep',
    event: (jobs) => ({ event: { jobId: { jobId: jobs.done }, orcaArchiveLocation: { name: BUCKET_DONE }, messageReceiptHandle: HANDLE } }),
    outcome: rejected('event.jobId'),
  },
];

const prototypeRows: Rows = [
  {
    label: 'JSON "__proto__" holding the whole event',
    event: (jobs) => JSON.parse(`{"__proto__": {"event": {${doneJson(jobs)}}}}`) as unknown,
    outcome: rejected('event'),
  },
  {
    label: 'JSON "__proto__" holding jobId',
    event: (jobs) => ({ event: JSON.parse(`{"__proto__": {"jobId": ${jobs.done}}, ${doneJson(jobs, 'jobId')}}`) as unknown }),
    outcome: rejected('event.jobId'),
  },
  {
    label: 'JSON "__proto__" holding orcaArchiveLocation',
    event: (jobs) => ({
      event: JSON.parse(`{"__proto__": {"orcaArchiveLocation": "${BUCKET_DONE}"}, ${doneJson(jobs, 'orcaArchiveLocation')}}`) as unknown,
    }),
    outcome: rejected('event.orcaArchiveLocation'),
  },
  {
    label: 'JSON "__proto__" holding messageReceiptHandle',
    event: (jobs) => ({
      event: JSON.parse(`{"__proto__": {"messageReceiptHandle": "${HANDLE}"}, ${doneJson(jobs, 'messageReceiptHandle')}}`) as unknown,
    }),
    outcome: rejected('event.messageReceiptHandle'),
  },
  {
    label: 'a wrapper inheriting "event" from its prototype',
    event: (jobs) => Object.create({ event: doneFields(jobs) }) as unknown,
    outcome: rejected('event'),
  },
  {
    label: 'an object literal whose __proto__ carries jobId',
    event: (jobs) => ({ event: { __proto__: { jobId: jobs.done }, orcaArchiveLocation: BUCKET_DONE, messageReceiptHandle: HANDLE } }),
    outcome: rejected('event.jobId'),
  },
  {
    label: 'constructor.prototype.event',
    event: (jobs) => ({ constructor: { prototype: { event: doneFields(jobs) } } }),
    outcome: rejected('event'),
  },
  {
    label: 'constructor.prototype.jobId',
    event: (jobs) => ({
      event: { constructor: { prototype: { jobId: jobs.done } }, orcaArchiveLocation: BUCKET_DONE, messageReceiptHandle: HANDLE },
    }),
    outcome: rejected('event.jobId'),
  },
  { label: 'a "prototype" key as jobId', event: withField('jobId', { prototype: 1 }), outcome: rejected('event.jobId') },
];

const jobIdRows: Rows = [
  { label: 'missing', event: without('jobId'), outcome: rejected('event.jobId') },
  { label: 'null', event: withField('jobId', null), outcome: rejected('event.jobId') },
  { label: 'true', event: withField('jobId', true), outcome: rejected('event.jobId') },
  { label: 'false', event: withField('jobId', false), outcome: rejected('event.jobId') },
  { label: 'an empty object', event: withField('jobId', {}), outcome: rejected('event.jobId') },
  { label: 'an array holding the id', event: (jobs) => withField('jobId', [jobs.done])(jobs), outcome: rejected('event.jobId') },
  { label: 'an empty array', event: withField('jobId', []), outcome: rejected('event.jobId') },
  { label: 'a numeric string', event: (jobs) => withField('jobId', String(jobs.done))(jobs), outcome: rejected('event.jobId') },
  { label: 'a numeric string with spaces', event: (jobs) => withField('jobId', ` ${jobs.done} `)(jobs), outcome: rejected('event.jobId') },
  { label: 'an exponent string', event: withField('jobId', '4.2e1'), outcome: rejected('event.jobId') },
  { label: 'a hex string', event: withField('jobId', '0x2a'), outcome: rejected('event.jobId') },
  { label: 'an empty string', event: withField('jobId', ''), outcome: rejected('event.jobId') },
  { label: 'a function-like string', event: withField('jobId', 'function () { return 1 }'), outcome: rejected('event.jobId') },
  { label: 'an arrow function', event: (jobs) => withField('jobId', () => jobs.done)(jobs), outcome: rejected('event.jobId') },
  { label: 'SQL text', event: withField('jobId', `1; ${SQL}`), outcome: rejected('event.jobId') },
  { label: 'a 10 MB string', event: (jobs) => withField('jobId', '1'.repeat(TEN_MB))(jobs), outcome: rejected('event.jobId') },
  { label: 'a float 2.5', event: withField('jobId', 2.5), outcome: rejected('event.jobId') },
  { label: 'a float just above an integer', event: (jobs) => withField('jobId', jobs.done + 1e-9)(jobs), outcome: rejected('event.jobId') },
  { label: 'negative -7', event: withField('jobId', -7), outcome: rejected('event.jobId') },
  { label: '-0', event: withField('jobId', -0), outcome: rejected('event.jobId') },
  { label: 'NaN', event: withField('jobId', Number.NaN), outcome: rejected('event.jobId') },
  { label: 'Infinity', event: withField('jobId', Number.POSITIVE_INFINITY), outcome: rejected('event.jobId') },
  { label: '-Infinity', event: withField('jobId', Number.NEGATIVE_INFINITY), outcome: rejected('event.jobId') },
  { label: '2**53', event: withField('jobId', 2 ** 53), outcome: rejected('event.jobId') },
  { label: '2**53 + 2', event: withField('jobId', 2 ** 53 + 2), outcome: rejected('event.jobId') },
  { label: '2**64', event: withField('jobId', 2 ** 64), outcome: rejected('event.jobId') },
  { label: 'Number.MAX_VALUE', event: withField('jobId', Number.MAX_VALUE), outcome: rejected('event.jobId') },
  { label: 'Number.MIN_VALUE', event: withField('jobId', Number.MIN_VALUE), outcome: rejected('event.jobId') },
  { label: 'BigInt 10n', event: withField('jobId', 10n), outcome: rejected('event.jobId') },
  { label: "the finished job's id as a BigInt", event: (jobs) => withField('jobId', BigInt(jobs.done))(jobs), outcome: rejected('event.jobId') },
  { label: 'a boxed Number', event: (jobs) => withField('jobId', new Number(jobs.done))(jobs), outcome: rejected('event.jobId') },
  { label: 'a Symbol', event: withField('jobId', Symbol('jobId')), outcome: rejected('event.jobId') },
];

const locationRows: Rows = [
  { label: 'missing', event: without('orcaArchiveLocation'), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'null', event: withField('orcaArchiveLocation', null), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a number', event: withField('orcaArchiveLocation', 42), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'true', event: withField('orcaArchiveLocation', true), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'an array holding the name', event: withField('orcaArchiveLocation', [BUCKET_DONE]), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'an object', event: withField('orcaArchiveLocation', { name: BUCKET_DONE }), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a boxed String', event: withField('orcaArchiveLocation', new String(BUCKET_DONE)), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'an empty string', event: withField('orcaArchiveLocation', ''), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a 10 MB string', event: (jobs) => withField('orcaArchiveLocation', 'a'.repeat(TEN_MB))(jobs), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'SQL text', event: withField('orcaArchiveLocation', SQL), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a bucket name followed by SQL', event: withField('orcaArchiveLocation', `${BUCKET_DONE}${SQL}`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a 2-character name', event: withField('orcaArchiveLocation', 'ab'), outcome: rejected('event.orcaArchiveLocation') },
  // Legacy us-east-1 names (up to 255 characters, upper case, underscores) are valid: another bucket's.
  { label: 'a 64-character name', event: withField('orcaArchiveLocation', `b${'0'.repeat(63)}`), outcome: refused(LocationMismatchError) },
  { label: 'a 255-character legacy name', event: withField('orcaArchiveLocation', `b${'0'.repeat(254)}`), outcome: refused(LocationMismatchError) },
  { label: 'a 256-character name', event: withField('orcaArchiveLocation', `b${'0'.repeat(255)}`), outcome: rejected('event.orcaArchiveLocation') },
  // "а" below is CYRILLIC SMALL LETTER A (U+0430), not the Latin letter.
  { label: 'a Cyrillic look-alike letter', event: withField('orcaArchiveLocation', 'prefix-orcа-done'), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a fullwidth look-alike letter', event: withField('orcaArchiveLocation', '\uff50refix-orca-done'), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a zero-width space inside', event: withField('orcaArchiveLocation', 'prefix-orca\u200b-done'), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a NUL character at the end', event: withField('orcaArchiveLocation', `${BUCKET_DONE}\u0000`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'mixed case (a legacy name)', event: withField('orcaArchiveLocation', 'Prefix-Orca-Done'), outcome: refused(LocationMismatchError) },
  { label: 'upper case (a legacy name)', event: withField('orcaArchiveLocation', BUCKET_DONE.toUpperCase()), outcome: refused(LocationMismatchError) },
  { label: 'a leading dot', event: withField('orcaArchiveLocation', `.${BUCKET_DONE}`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a trailing dot', event: withField('orcaArchiveLocation', `${BUCKET_DONE}.`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a leading dash', event: withField('orcaArchiveLocation', `-${BUCKET_DONE}`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a trailing dash', event: withField('orcaArchiveLocation', `${BUCKET_DONE}-`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a leading space', event: withField('orcaArchiveLocation', ` ${BUCKET_DONE}`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a trailing space', event: withField('orcaArchiveLocation', `${BUCKET_DONE} `), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a trailing newline', event: withField('orcaArchiveLocation', `${BUCKET_DONE}\n`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a leading tab', event: withField('orcaArchiveLocation', `\t${BUCKET_DONE}`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'underscores (a legacy name)', event: withField('orcaArchiveLocation', BUCKET_DONE.replaceAll('-', '_')), outcome: refused(LocationMismatchError) },
  { label: 'a leading underscore', event: withField('orcaArchiveLocation', `_${BUCKET_DONE}`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'an s3:// URL', event: withField('orcaArchiveLocation', `s3://${BUCKET_DONE}`), outcome: rejected('event.orcaArchiveLocation') },
  { label: 'a bucket and key path', event: withField('orcaArchiveLocation', `${BUCKET_DONE}/key.h5`), outcome: rejected('event.orcaArchiveLocation') },
  { label: '"__proto__"', event: withField('orcaArchiveLocation', '__proto__'), outcome: rejected('event.orcaArchiveLocation') },
];

const handleRows: Rows = [
  { label: 'missing', event: without('messageReceiptHandle'), outcome: rejected('event.messageReceiptHandle') },
  { label: 'null', event: withField('messageReceiptHandle', null), outcome: rejected('event.messageReceiptHandle') },
  { label: 'the number 0', event: withField('messageReceiptHandle', 0), outcome: rejected('event.messageReceiptHandle') },
  { label: 'a number', event: withField('messageReceiptHandle', 12345), outcome: rejected('event.messageReceiptHandle') },
  { label: 'false', event: withField('messageReceiptHandle', false), outcome: rejected('event.messageReceiptHandle') },
  { label: 'an empty array', event: withField('messageReceiptHandle', []), outcome: rejected('event.messageReceiptHandle') },
  { label: 'an array holding a handle', event: withField('messageReceiptHandle', [HANDLE]), outcome: rejected('event.messageReceiptHandle') },
  { label: 'a boxed String', event: withField('messageReceiptHandle', new String(HANDLE)), outcome: rejected('event.messageReceiptHandle') },
  { label: 'whitespace only', event: withField('messageReceiptHandle', ' \n\t\r '), outcome: rejected('event.messageReceiptHandle') },
  { label: 'a 10 MB string', event: (jobs) => withField('messageReceiptHandle', 'A'.repeat(TEN_MB))(jobs), outcome: rejected('event.messageReceiptHandle') },
  { label: 'a 10 MB string of SQL', event: (jobs) => withField('messageReceiptHandle', SQL.repeat(Math.ceil(TEN_MB / SQL.length)))(jobs), outcome: rejected('event.messageReceiptHandle') },
];

const boundValueRows: Rows = [
  // A well-formed message that is wrong: refused after reading the job, nothing written.
  {
    label: 'no such job, SQL text as the handle',
    event: () => ({ event: { jobId: MISSING_JOB_ID, orcaArchiveLocation: BUCKET, messageReceiptHandle: SQL } }),
    outcome: refused(JobNotFoundError),
  },
  {
    label: 'no such job on a bucket named "constructor"',
    event: () => ({ event: { jobId: 987_654_321, orcaArchiveLocation: 'constructor', messageReceiptHandle: HANDLE } }),
    outcome: refused(JobNotFoundError),
  },
  {
    label: 'an IP address as the bucket name',
    event: () => ({ event: { jobId: 2 ** 31, orcaArchiveLocation: '127.0.0.1', messageReceiptHandle: HANDLE } }),
    outcome: rejected('event.orcaArchiveLocation'),
  },
  {
    label: "the staged job with another job's bucket",
    event: (jobs) => ({ event: { jobId: jobs.staged, orcaArchiveLocation: BUCKET_DONE, messageReceiptHandle: SQL } }),
    outcome: refused(LocationMismatchError),
  },
  {
    label: 'the staged job with a 3-character bucket',
    event: (jobs) => ({ event: { jobId: jobs.staged, orcaArchiveLocation: 'a0z', messageReceiptHandle: HANDLE } }),
    outcome: refused(LocationMismatchError),
  },
  {
    label: 'the staged job with a 63-character bucket',
    event: (jobs) => ({ event: { jobId: jobs.staged, orcaArchiveLocation: `b${'0'.repeat(62)}`, messageReceiptHandle: HANDLE } }),
    outcome: refused(LocationMismatchError),
  },
  {
    label: 'consecutive dots in the bucket name (a legacy name)',
    event: (jobs) => ({ event: { jobId: jobs.staged, orcaArchiveLocation: 'prefix..orca', messageReceiptHandle: HANDLE } }),
    outcome: refused(LocationMismatchError),
  },
  {
    label: 'the staged job with an SQL comment in the bucket',
    event: (jobs) => ({ event: { jobId: jobs.staged, orcaArchiveLocation: 'x--drop-table-files', messageReceiptHandle: HANDLE } }),
    outcome: refused(LocationMismatchError),
  },
  {
    label: 'the staged job with a digit look-alike of its bucket name',
    event: (jobs) => ({ event: { jobId: jobs.staged, orcaArchiveLocation: 'prefix-0rca-primary', messageReceiptHandle: HANDLE } }),
    outcome: refused(LocationMismatchError),
  },
  {
    label: 'a job still getting its S3 list',
    event: (jobs) => ({ event: { jobId: jobs.loading, orcaArchiveLocation: BUCKET_LOADING, messageReceiptHandle: SQL } }),
    outcome: refused(InventoryNotLoadedError),
  },
  // Odd but valid values for the finished job: a re-run writes nothing and deletes the message.
  { label: 'SQL text as the handle', event: withField('messageReceiptHandle', SQL), outcome: succeeds },
  { label: 'quotes and escapes as the handle', event: withField('messageReceiptHandle', `"'\`\\;$1 %s %n \\x00 E'\\''`), outcome: succeeds },
  { label: 'unicode as the handle', event: withField('messageReceiptHandle', 'AQEB-🚀-ß-漢字-Кириллица-\u202e-\ufeff'), outcome: succeeds },
  { label: 'a NUL character in the handle', event: withField('messageReceiptHandle', 'AQEB\u0000after-nul'), outcome: succeeds },
  { label: 'whitespace around the handle', event: withField('messageReceiptHandle', `  ${HANDLE}\n`), outcome: succeeds },
  { label: 'a handle of exactly 8192 characters', event: withField('messageReceiptHandle', 'Q'.repeat(8192)), outcome: succeeds },
  { label: 'the word NULL as the handle', event: withField('messageReceiptHandle', 'NULL'), outcome: succeeds },
  { label: 'JSON text as the handle', event: (jobs) => withField('messageReceiptHandle', JSON.stringify({ event: doneFields(jobs) }))(jobs), outcome: succeeds },
  {
    label: 'null-prototype wrapper and event objects',
    event: (jobs) => {
      const inner = Object.assign(Object.create(null) as object, doneFields(jobs));
      return Object.assign(Object.create(null) as object, { event: inner });
    },
    outcome: succeeds,
  },
  {
    label: 'a class instance holding the event as an own field',
    event: (jobs) =>
      new (class StepInput {
        event = doneFields(jobs);
      })(),
    outcome: succeeds,
  },
  {
    label: 'an own JSON "__proto__" key next to valid fields',
    event: (jobs) => JSON.parse(`{"event": {"__proto__": {"jobId": 1, "polluted": true}, ${doneJson(jobs)}}, "__proto__": {"polluted": true}}`) as unknown,
    outcome: succeeds,
  },
  {
    label: 'junk fields next to valid ones',
    event: (jobs) => ({
      event: { ...doneFields(jobs), jobID: 5, constructor: 'x', extra: { nested: [1, { deeper: SQL }] } },
      other: SQL,
      prototype: null,
    }),
    outcome: succeeds,
  },
];

const corpus: Row[] = [
  ...wrapperRows.map((row) => ({ ...row, category: 'wrapper' })),
  ...nestedRows.map((row) => ({ ...row, category: 'nested junk' })),
  ...prototypeRows.map((row) => ({ ...row, category: 'prototype keys' })),
  ...jobIdRows.map((row) => ({ ...row, category: 'jobId' })),
  ...locationRows.map((row) => ({ ...row, category: 'orcaArchiveLocation' })),
  ...handleRows.map((row) => ({ ...row, category: 'messageReceiptHandle' })),
  ...boundValueRows.map((row) => ({ ...row, category: 'odd but valid' })),
];

/** Records the input of every command sent, then sends it for real. */
function recordSends(sqs: SqsSender): { sender: SqsSender; inputs: unknown[] } {
  const inputs: unknown[] = [];
  return {
    inputs,
    sender: {
      send: (command: DeleteMessageCommand) => {
        inputs.push({ ...command.input });
        return sqs.send(command);
      },
    },
  };
}

describe('hostile and malformed input', () => {
  const { database: t, schema, sqs } = useOrcaSchema({
    prefix: 'orca_hostile',
    buckets: [BUCKET, BUCKET_DONE, BUCKET_LOADING, ...ODD_BUCKETS],
    sqs: true,
  });
  let queue: TestQueue;
  const jobs: Jobs = { staged: 0, done: 0, loading: 0 };
  let before: Record<string, string[]>;

  const tables = [
    'reconcile_job',
    'reconcile_phantom_report',
    'reconcile_orphan_report',
    'reconcile_catalog_mismatch_report',
    'files',
    'granules',
    'reconcile_s3_object',
  ];

  /** Every row of the tables a run reads or writes, as JSON text, plus the schema's table list. */
  const snapshotDatabase = async (): Promise<Record<string, string[]>> => {
    const snapshot: Record<string, string[]> = {};
    for (const table of tables) {
      const rows = await t.query<{ row: string }>(`SELECT to_jsonb(r)::text AS row FROM "${schema}".${table} r ORDER BY 1`);
      snapshot[table] = rows.map((r) => r.row);
    }
    const relations = await t.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1`,
      [schema],
    );
    snapshot['relations'] = relations.map((r) => r.name);
    return snapshot;
  };

  beforeAll(async () => {
    queue = await sqs.createQueue();

    jobs.staged = await insertJob(t, schema, BUCKET);
    await seedOneOfEachReport(t, schema, jobs.staged, BUCKET);
    await queue.sendAndReceiveJob({ jobId: jobs.staged, orcaArchiveLocation: BUCKET });

    jobs.done = await insertJob(t, schema, BUCKET_DONE);
    await seedOneOfEachReport(t, schema, jobs.done, BUCKET_DONE);
    const doneQueue = await sqs.createQueue();
    const message = await doneQueue.sendAndReceiveJob({ jobId: jobs.done, orcaArchiveLocation: BUCKET_DONE });
    await task(
      { jobId: jobs.done, orcaArchiveLocation: BUCKET_DONE, queueUrl: doneQueue.url, messageReceiptHandle: message.receiptHandle },
      { database: t.db, sqs: sqs.sqs, schema, retry: noWait },
    );
    expect((await readJob(t, schema, jobs.done)).status_id).toBe(OrcaStatus.Success);

    jobs.loading = await insertJob(t, schema, BUCKET_LOADING, OrcaStatus.GettingS3List);
    before = await snapshotDatabase();
    expect(before['files']).toHaveLength(6);
    expect(before['reconcile_phantom_report']).toHaveLength(1);
  });

  /** A handler over spies of the test database and the emulator's SQS client. */
  const spiedHandler = (options: { schema?: string } = {}) => {
    const database = recordCalls(t.db);
    const sends = recordSends(sqs.sqs);
    const client = recordCalls(sends.sender);
    const { logger, lines } = captureLogger();
    const handler = createHandler({
      database: database.spy,
      sqs: client.spy,
      queueUrl: queue.url,
      env: {},
      schema: options.schema ?? schema,
      logger,
      retry: noWait,
    });
    return { handler, databaseCalls: database.calls, sqsCalls: client.calls, sent: sends.inputs, lines };
  };

  it('holds at least 60 events, each a rejection, a refusal or a success', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(60);
    expect(corpus.filter((row) => row.outcome.kind === 'rejected').length).toBeGreaterThanOrEqual(60);
    expect(new Set(corpus.map((row) => `${row.category}: ${row.label}`)).size).toBe(corpus.length);
  });

  describe.each(['wrapper', 'nested junk', 'prototype keys', 'jobId', 'orcaArchiveLocation', 'messageReceiptHandle', 'odd but valid'])(
    '%s',
    (category) => {
      const rows = corpus.filter((row) => row.category === category);
      it.each(rows.map((row) => [`${row.label}: ${describeOutcome(row.outcome)}`, row] as const))('%s', async (_name, row) => {
        // Prepare
        const { handler, databaseCalls, sqsCalls, sent } = spiedHandler();
        const event = row.event(jobs);

        // Act
        const result = await handler(event).then(
          (output) => ({ output, error: undefined }),
          (error: unknown) => ({ output: undefined, error }),
        );

        // Assess
        const { outcome } = row;
        if (outcome.kind === 'rejected') {
          expect(result.error).toBeInstanceOf(InvalidInputError);
          expect(result.error).toMatchObject({ code: 'INVALID_INPUT', field: outcome.field });
          const message = (result.error as Error).message;
          expect(message).toContain(outcome.field);
          // A hostile value is described, never echoed at length.
          expect(message.length).toBeLessThan(400);
          expect(databaseCalls).toEqual([]);
          expect(sqsCalls).toEqual([]);
        } else if (outcome.kind === 'refused') {
          expect(result.error).toBeInstanceOf(outcome.error);
          expect(result.error).not.toBeInstanceOf(DatabaseError);
          const fields = (event as { event: { jobId: number; orcaArchiveLocation: string } }).event;
          expect(result.error).toMatchObject({ jobId: fields.jobId });
          if (result.error instanceof LocationMismatchError) {
            // The requested name came back byte for byte: it was compared, not parsed.
            expect(result.error.requestedLocation).toBe(fields.orcaArchiveLocation);
          }
          expect(databaseCalls.length).toBeGreaterThan(0);
          expect(sqsCalls).toEqual([]);
        } else {
          expect(result.error).toBeUndefined();
          expect(result.output).toEqual({ jobId: jobs.done, phantoms: 1, orphans: 1, mismatches: 1 });
          expect(databaseCalls.length).toBeGreaterThan(0);
          const handle = (event as { event: { messageReceiptHandle: string } }).event.messageReceiptHandle;
          expect(sent).toEqual([{ QueueUrl: queue.url, ReceiptHandle: handle }]);
        }
      });
    },
  );

  describe('an event whose property access throws', () => {
    // The field that could not be read is named, and nothing is called.
    const throwing: Array<[string, (jobs: Jobs) => unknown, string]> = [
      [
        'a jobId getter',
        (j) => ({
          event: {
            get jobId(): number {
              throw new Error(`getter of job ${j.done} throws`);
            },
            orcaArchiveLocation: BUCKET_DONE,
            messageReceiptHandle: HANDLE,
          },
        }),
        'event.jobId',
      ],
      [
        'an event getter',
        () => ({
          get event(): unknown {
            throw new Error('event getter throws');
          },
        }),
        'event',
      ],
      [
        'a proxy whose traps throw',
        (j) => ({
          event: new Proxy(doneFields(j), {
            getOwnPropertyDescriptor() {
              throw new Error('trap throws');
            },
            get() {
              throw new Error('trap throws');
            },
          }),
        }),
        'event.jobId',
      ],
    ];

    it.each(throwing)('%s is refused before any database or queue call', async (_label, build, field) => {
      // Prepare
      const { handler, databaseCalls, sqsCalls } = spiedHandler();

      // Act
      const error = await handler(build(jobs)).catch((thrown: unknown) => thrown);

      // Assess
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error).toMatchObject({ code: 'INVALID_INPUT', field });
      expect(databaseCalls).toEqual([]);
      expect(sqsCalls).toEqual([]);
    });
  });

  describe('the schema option', () => {
    const hostileSchemas: Array<[string, unknown]> = [
      ['a quote and SQL', 'orca"; DROP SCHEMA x; --'],
      ['a space', 'a b'],
      ['an empty name', ''],
      ['64 characters', 'x'.repeat(64)],
      ['a qualified name', 'orca.files'],
      ['a semicolon', 'orca;'],
      ['a leading digit', '1orca'],
      ['a NUL character', 'orca\u0000'],
      ['a Cyrillic look-alike letter', 'orcа'],
      ['an already quoted name', '"orca"'],
      ['a number', 42],
    ];

    it.each(hostileSchemas)('rejects %s in createHandler, task and generateReports before any query', async (_label, name) => {
      // Prepare
      const hostile = name as string;
      const { handler, databaseCalls, sqsCalls } = spiedHandler({ schema: hostile });
      const direct = recordCalls(t.db);
      const directSqs = recordCalls(sqs.sqs);
      const fields = { jobId: jobs.done, orcaArchiveLocation: BUCKET_DONE };

      // Act
      const errors = await Promise.all(
        [
          handler({ event: { ...fields, messageReceiptHandle: HANDLE } }),
          task({ ...fields, queueUrl: queue.url, messageReceiptHandle: HANDLE }, { database: direct.spy, sqs: directSqs.spy, schema: hostile }),
          generateReports(direct.spy, fields, { schema: hostile }),
        ].map((run) => run.then(() => undefined, (error: unknown) => error)),
      );

      // Assess
      for (const error of errors) {
        expect(error).toBeInstanceOf(InvalidInputError);
        expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'schema' });
      }
      expect(databaseCalls).toEqual([]);
      expect(sqsCalls).toEqual([]);
      expect(direct.calls).toEqual([]);
      expect(directSqs.calls).toEqual([]);
    });

    it.each([
      ['ORCA', () => 'ORCA'],
      ['the test schema in upper case', () => schema.toUpperCase()],
    ])('takes %s as its own case-sensitive name: the tables are not found', async (_label, name) => {
      // Prepare
      const upper = name();
      const [namespace] = await t.query<{ found: string | null }>('SELECT to_regnamespace($1)::text AS found', [`"${upper}"`]);
      expect(namespace?.found).toBeNull();
      const { handler, databaseCalls, sqsCalls } = spiedHandler({ schema: upper });
      const fields = { jobId: jobs.done, orcaArchiveLocation: BUCKET_DONE };

      // Act
      const errors = await Promise.all(
        [
          handler({ event: { ...fields, messageReceiptHandle: HANDLE } }),
          task({ ...fields, queueUrl: queue.url, messageReceiptHandle: HANDLE }, { database: t.db, sqs: sqs.sqs, schema: upper, retry: noWait }),
          generateReports(t.db, fields, { schema: upper, retry: noWait }),
        ].map((run) => run.then(() => undefined, (error: unknown) => error)),
      );

      // Assess: undefined_table, never a syntax error.
      for (const error of errors) {
        expect(error).toBeInstanceOf(DatabaseError);
        expect(error).toMatchObject({ code: 'DATABASE', sqlState: '42P01' });
        expect((error as Error).message).toContain(`"${upper}.reconcile_job"`);
      }
      expect(databaseCalls.length).toBeGreaterThan(0);
      expect(sqsCalls).toEqual([]);
    });
  });

  it('leaves every row, every table and Object.prototype as they were after the whole corpus', async () => {
    // Act
    const after = await snapshotDatabase();

    // Assess
    expect(after).toEqual(before);
    const [files] = await t.query<{ files: string | null }>('SELECT to_regclass($1)::text AS files', [`"${schema}".files`]);
    expect(files?.files).not.toBeNull();
    expect((await readJob(t, schema, jobs.staged)).status_id).toBe(OrcaStatus.Staged);
    // The staged job's message is still in flight: no delete reached it.
    expect(await queue.messagesLeft()).toBe(1);
    const probe = {} as Record<string, unknown>;
    for (const key of ['jobId', 'orcaArchiveLocation', 'messageReceiptHandle', 'event', 'polluted', 'prototype']) {
      expect(probe[key]).toBeUndefined();
    }
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeNamesAtStart);
  });

  describe('an odd but valid bucket name is a bound value in the report statement', () => {
    it.each(ODD_BUCKETS)('%s: the job runs and its reports are written', async (bucket) => {
      // Prepare
      const jobId = await insertJob(t, schema, bucket);
      const keys = await seedOneOfEachReport(t, schema, jobId, bucket);
      const ownQueue = await sqs.createQueue();
      const message = await ownQueue.sendAndReceiveJob({ jobId, orcaArchiveLocation: bucket });
      const handler = createHandler({ database: t.db, sqs: sqs.sqs, queueUrl: ownQueue.url, env: {}, schema, retry: noWait });

      // Act
      const output = await handler({ event: { jobId, orcaArchiveLocation: bucket, messageReceiptHandle: message.receiptHandle } });

      // Assess
      expect(output).toEqual({ jobId, phantoms: 1, orphans: 1, mismatches: 1 });
      const [phantom] = await t.query<{ key_path: string }>(
        `SELECT key_path FROM "${schema}".reconcile_phantom_report WHERE job_id = $1`,
        [jobId],
      );
      expect(phantom?.key_path).toBe(keys.phantom);
      expect((await readJob(t, schema, jobId)).status_id).toBe(OrcaStatus.Success);
      expect(await ownQueue.messagesLeft()).toBe(0);
      expect((await snapshotDatabase())['relations']).toEqual(before['relations']);
    });
  });
});

function describeOutcome(outcome: Outcome): string {
  if (outcome.kind === 'rejected') return `InvalidInputError ${outcome.field}`;
  if (outcome.kind === 'refused') return outcome.error.name;
  return 'succeeds as a re-run';
}
