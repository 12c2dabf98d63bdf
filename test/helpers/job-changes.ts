/**
 * Report histories for the comparison tests: a bucket's jobs with random statuses and random
 * report rows, a loader that writes them in a few set-based statements, and an independent
 * reference of what comparing two of them must give, computed here from the rows themselves.
 */
import {
  type ChangeType,
  type JobChangeSummary,
  OrcaStatus,
  type ReportChange,
  type ReportKind,
  type ReportRows,
} from '../../src/index.js';
import { REPORT_KINDS, reportColumns } from '../../src/read-report.js';
import { NEAR_DUPLICATE_KEYS, Random, TRICKY_KEYS } from './datasets.js';
import type { TestDatabase } from './database.js';
import { DISCREPANCY_TYPES, REPORT_TABLE, camel } from './rows.js';

export const HISTORY_BUCKET = 'prefix-orca-primary';
export const OTHER_BUCKET = 'prefix-orca-secondary';

/**
 * Keys whose order differs between UTF-16 code units and UTF-8 bytes: U+FF21 sorts after the
 * surrogates of U+1F600 in JavaScript's string order but before its bytes in UTF-8.
 */
export const BYTE_ORDER_KEYS = ['order/\uFF21.h5', 'order/\u{1F600}.h5', 'order/z.h5', 'order/Z.h5'];

/** The report rows of one job, per kind, as the library returns them. */
export type JobReports = { [K in ReportKind]: ReportRows[K][] };

export interface HistoryJob {
  bucket: string;
  status: OrcaStatus;
  reports: JobReports;
}

export const emptyReports = (): JobReports => ({ phantom: [], orphan: [], mismatch: [] });

/** Byte-wise order of UTF-8 text, as PostgreSQL's "C" collation sorts. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const SIZES = [0n, 1n, 4096n, 2n ** 31n, 2n ** 53n + 1n, 2n ** 62n + 3n];
const COLLECTIONS = ['MOD09GQ___061', 'HLSS30___2.0'];
const GRANULES = ['G-1', 'G-2', 'g-1'];

function time(random: Random, base: string): Date {
  return new Date(Date.parse(base) + random.int(0, 30 * 86_400_000));
}

function etag(random: Random): string {
  return `"${Array.from({ length: 8 }, () => random.int(0, 15).toString(16)).join('')}"`;
}

/** One random row of `kind` for job 0 (the loader sets the real job id) under `keyPath`. */
function randomRow<K extends ReportKind>(random: Random, kind: K, keyPath: string, collectionId: string, granuleId: string): ReportRows[K] {
  const base = { jobId: 0n, keyPath };
  const rows: { [P in ReportKind]: () => ReportRows[P] } = {
    phantom: () => ({
      ...base,
      collectionId,
      granuleId,
      filename: keyPath.split('/').pop() || keyPath,
      orcaEtag: etag(random),
      orcaLastUpdate: time(random, '2025-06-01Z'),
      orcaSize: random.pick(SIZES),
      orcaStorageClassId: random.pick([1, 2]),
    }),
    orphan: () => ({
      ...base,
      etag: etag(random),
      lastUpdate: time(random, '2026-01-01Z'),
      sizeInBytes: random.pick(SIZES),
      storageClass: random.pick(['GLACIER', 'DEEP_ARCHIVE', 'STANDARD']),
    }),
    mismatch: () => ({
      ...base,
      collectionId,
      granuleId,
      filename: keyPath.split('/').pop() || keyPath,
      cumulusArchiveLocation: 'cumulus-bucket',
      orcaEtag: etag(random),
      s3Etag: etag(random),
      orcaLastUpdate: time(random, '2025-06-01Z'),
      s3LastUpdate: time(random, '2026-01-01Z'),
      orcaSizeInBytes: random.pick(SIZES),
      s3SizeInBytes: random.pick(SIZES),
      orcaStorageClassId: random.pick([1, 2]),
      s3StorageClass: random.pick(['GLACIER', 'DEEP_ARCHIVE']),
      // Few types, so that a key kept from one job to the next often keeps its type too.
      discrepancyType: random.pick(DISCREPANCY_TYPES.slice(0, random.chance(0.5) ? 2 : 7)),
    }),
  };
  return rows[kind]() as ReportRows[K];
}

/**
 * A random report of `kind` over `keys`: each key in it with probability `density`. Phantom and
 * mismatch reports sometimes hold a key twice, under another granule, as their primary key
 * allows.
 */
function randomReport<K extends ReportKind>(random: Random, kind: K, keys: readonly string[], density: number): ReportRows[K][] {
  const rows: ReportRows[K][] = [];
  for (const keyPath of keys) {
    if (!random.chance(density)) continue;
    const collectionId = random.pick(COLLECTIONS);
    const granuleId = random.pick(GRANULES);
    rows.push(randomRow(random, kind, keyPath, collectionId, granuleId));
    if (kind !== 'orphan' && random.chance(0.08)) {
      const otherGranule = GRANULES.find((granule) => granule !== granuleId)!;
      rows.push(randomRow(random, kind, keyPath, collectionId, otherGranule));
    }
  }
  return random.shuffle(rows);
}

/**
 * A copy of `rows` where each row is kept with probability `keep` (with some of its values
 * changed: a mismatch may change its type), and new rows added over `keys`.
 */
function evolveReport<K extends ReportKind>(random: Random, kind: K, rows: readonly ReportRows[K][], keys: readonly string[], keep: number): ReportRows[K][] {
  const kept = rows
    .filter(() => random.chance(keep))
    .map((row) => {
      const fresh = randomRow(random, kind, row.keyPath, (row as { collectionId?: string }).collectionId ?? '', (row as { granuleId?: string }).granuleId ?? '');
      if (random.chance(0.5)) return { ...row };
      return { ...fresh, ...(kind === 'mismatch' && random.chance(0.5) ? { discrepancyType: (row as ReportRows['mismatch']).discrepancyType } : {}) };
    });
  const taken = new Set(kept.map((row) => row.keyPath));
  const added = randomReport(random, kind, keys.filter((key) => !taken.has(key)), random.pick([0, 0.1, 0.3]));
  return random.shuffle([...kept, ...added]);
}

/**
 * The jobs of `seed`, oldest first: 2 to 6 jobs, mostly of {@link HISTORY_BUCKET} and mostly
 * `success`, some of {@link OTHER_BUCKET} or in another status. Each job's reports grow out of
 * the previous job's of its bucket, so that consecutive jobs share many keys; some jobs repeat
 * the previous job's reports exactly, some have all three reports empty.
 */
export function generateHistory(seed: number): HistoryJob[] {
  const random = new Random(seed);
  const plain = Array.from({ length: random.int(3, 14) }, (_v, n) => `${random.pick(COLLECTIONS)}/${random.pick(GRANULES)}/B${n}.tif`);
  const keys = [...new Set([...random.shuffle([...NEAR_DUPLICATE_KEYS, ...TRICKY_KEYS]).slice(0, 6), ...BYTE_ORDER_KEYS.slice(0, random.int(0, 4)), ...plain])];
  const jobs: HistoryJob[] = [];
  const last: Record<string, JobReports | undefined> = {};
  for (let n = random.int(2, 6); n > 0; n -= 1) {
    const bucket = random.chance(0.2) ? OTHER_BUCKET : HISTORY_BUCKET;
    const status = random.chance(0.75) ? OrcaStatus.Success : random.pick([OrcaStatus.Staged, OrcaStatus.GeneratingReports, OrcaStatus.Error]);
    const before = last[bucket];
    const roll = random.next();
    let reports: JobReports;
    if (roll < 0.1) reports = emptyReports();
    else if (before && roll < 0.25) reports = copyReports(before);
    else if (before) {
      const keep = random.pick([0, 0.5, 0.8, 1]);
      reports = {
        phantom: evolveReport(random, 'phantom', before.phantom, keys, keep),
        orphan: evolveReport(random, 'orphan', before.orphan, keys, keep),
        mismatch: evolveReport(random, 'mismatch', before.mismatch, keys, keep),
      };
    } else {
      const density = random.pick([0, 0.3, 0.6, 1]);
      reports = {
        phantom: randomReport(random, 'phantom', keys, density),
        orphan: randomReport(random, 'orphan', keys, density),
        mismatch: randomReport(random, 'mismatch', keys, density),
      };
    }
    last[bucket] = reports;
    jobs.push({ bucket, status, reports });
  }
  return jobs;
}

function copyReports(reports: JobReports): JobReports {
  return { phantom: reports.phantom.map((row) => ({ ...row })), orphan: reports.orphan.map((row) => ({ ...row })), mismatch: reports.mismatch.map((row) => ({ ...row })) };
}

/** Sets every row's jobId. */
function withJobId(reports: JobReports, jobId: number): JobReports {
  const id = BigInt(jobId);
  return {
    phantom: reports.phantom.map((row) => ({ ...row, jobId: id })),
    orphan: reports.orphan.map((row) => ({ ...row, jobId: id })),
    mismatch: reports.mismatch.map((row) => ({ ...row, jobId: id })),
  };
}

/** A row as JSON text for jsonb_populate_recordset: snake_case keys, int8 values as exact text. */
function rowJson(kind: ReportKind, row: ReportRows[ReportKind]): Record<string, unknown> {
  const record = row as unknown as Record<string, unknown>;
  return Object.fromEntries(
    reportColumns(kind).map((column) => {
      const value = record[camel(column)];
      return [column, typeof value === 'bigint' ? String(value) : value instanceof Date ? value.toISOString() : value];
    }),
  );
}

/** Writes report rows, each with its own jobId, in one statement per report. */
export async function insertReports(t: TestDatabase, schema: string, reports: JobReports): Promise<void> {
  for (const kind of REPORT_KINDS) {
    const rows = reports[kind] as ReportRows[ReportKind][];
    if (rows.length === 0) continue;
    const table = `"${schema}".${REPORT_TABLE[kind]}`;
    await t.query(`INSERT INTO ${table} SELECT * FROM jsonb_populate_recordset(NULL::${table}, $1::text::jsonb)`, [
      JSON.stringify(rows.map((row) => rowJson(kind, row))),
    ]);
  }
}

/** A job written to the database: its id, and its report rows with that id. */
export interface LoadedJob extends HistoryJob {
  id: number;
}

/** Inserts the jobs in order, each with its reports; returns them with their ids and rows. */
export async function loadHistory(t: TestDatabase, schema: string, history: readonly HistoryJob[]): Promise<LoadedJob[]> {
  const loaded: LoadedJob[] = [];
  for (const job of history) {
    const [row] = await t.query<{ id: string | number }>(
      `INSERT INTO "${schema}".reconcile_job (orca_archive_location, status_id, inventory_creation_time, start_time, last_update)
       VALUES ($1, $2, '2026-01-01Z', '2026-01-01T01:00Z', '2026-01-01T01:00Z') RETURNING id`,
      [job.bucket, job.status],
    );
    const id = Number(row!.id);
    const reports = withJobId(job.reports, id);
    await insertReports(t, schema, reports);
    loaded.push({ ...job, id, reports });
  }
  return loaded;
}

/** A job to load by hand: of {@link HISTORY_BUCKET}, `success` and with empty reports unless told otherwise. */
export interface JobSeed {
  bucket?: string;
  status?: OrcaStatus;
  reports?: Partial<JobReports>;
}

/** Inserts the jobs in order (see {@link JobSeed}), each with its reports. */
export function loadJobs(t: TestDatabase, schema: string, ...jobs: JobSeed[]): Promise<LoadedJob[]> {
  return loadHistory(
    t,
    schema,
    jobs.map((job) => ({
      bucket: job.bucket ?? HISTORY_BUCKET,
      status: job.status ?? OrcaStatus.Success,
      reports: { ...emptyReports(), ...job.reports },
    })),
  );
}

/** Why the reference refuses a comparison: the error class and the fields it must carry. */
export interface ExpectedRefusal {
  name: 'JobNotFoundError' | 'JobNotSuccessfulError' | 'NoPreviousJobError' | 'DifferentLocationsError';
  fields: Record<string, unknown>;
}

/**
 * What comparing `jobId` with `previousJobId` (or, without it, with the highest successful job
 * below `jobId` of its bucket) must give: the refusal, or the previous job and every change of
 * every report in the library's order (report by report, then key_path byte-wise, then the pair
 * within a key).
 */
export function referenceComparison(
  jobs: readonly LoadedJob[],
  jobId: number,
  previousJobId?: number,
): { refusal: ExpectedRefusal } | { previousJobId: number; changes: ReportChange[] } {
  const job = jobs.find((candidate) => candidate.id === jobId);
  if (!job) return { refusal: { name: 'JobNotFoundError', fields: { jobId } } };
  if (job.status !== OrcaStatus.Success) return { refusal: { name: 'JobNotSuccessfulError', fields: { jobId, status: job.status } } };
  const previous =
    previousJobId === undefined
      ? jobs.filter((candidate) => candidate.bucket === job.bucket && candidate.id < jobId && candidate.status === OrcaStatus.Success).at(-1)
      : jobs.find((candidate) => candidate.id === previousJobId);
  if (!previous) {
    return previousJobId === undefined
      ? { refusal: { name: 'NoPreviousJobError', fields: { jobId, orcaArchiveLocation: job.bucket } } }
      : { refusal: { name: 'JobNotFoundError', fields: { jobId: previousJobId } } };
  }
  if (previous.bucket !== job.bucket) {
    return {
      refusal: {
        name: 'DifferentLocationsError',
        fields: { jobId, orcaArchiveLocation: job.bucket, previousJobId: previous.id, previousOrcaArchiveLocation: previous.bucket },
      },
    };
  }
  if (previous.status !== OrcaStatus.Success) {
    return { refusal: { name: 'JobNotSuccessfulError', fields: { jobId: previous.id, status: previous.status } } };
  }
  return {
    previousJobId: previous.id,
    changes: REPORT_KINDS.flatMap((kind) => referenceChanges(kind, job.reports[kind], previous.reports[kind])),
  };
}

/** The rows of one key, in the order they are paired: by collection and granule, byte-wise. */
function byKey<K extends ReportKind>(rows: readonly ReportRows[K][]): Map<string, ReportRows[K][]> {
  const groups = new Map<string, ReportRows[K][]>();
  for (const row of rows) groups.set(row.keyPath, [...(groups.get(row.keyPath) ?? []), row]);
  const rest = (row: ReportRows[K]) => {
    const record = row as unknown as { collectionId?: string; granuleId?: string };
    return [record.collectionId ?? '', record.granuleId ?? ''];
  };
  for (const group of groups.values()) {
    group.sort((a, b) => {
      const [ra, rb] = [rest(a), rest(b)];
      return byteOrder(ra[0]!, rb[0]!) || byteOrder(ra[1]!, rb[1]!);
    });
  }
  return groups;
}

/** Every change of one report: rows matched on key_path (and their place among rows of that key). */
export function referenceChanges<K extends ReportKind>(kind: K, current: readonly ReportRows[K][], previous: readonly ReportRows[K][]): ReportChange[] {
  const now = byKey<K>(current);
  const before = byKey<K>(previous);
  const keys = [...new Set([...now.keys(), ...before.keys()])].sort(byteOrder);
  const changes: ReportChange[] = [];
  for (const keyPath of keys) {
    const a = now.get(keyPath) ?? [];
    const b = before.get(keyPath) ?? [];
    for (let index = 0; index < Math.max(a.length, b.length); index += 1) {
      const c = a[index];
      const p = b[index];
      let change: ChangeType;
      if (!p) change = 'new';
      else if (!c) change = 'resolved';
      else if (kind === 'mismatch' && (c as ReportRows['mismatch']).discrepancyType !== (p as ReportRows['mismatch']).discrepancyType) change = 'changed';
      else change = 'unchanged';
      changes.push({ kind, change, keyPath, ...(c && { current: c }), ...(p && { previous: p }) } as ReportChange);
    }
  }
  return changes;
}

/** The summary the reference changes make. */
export function referenceSummary(previousJobId: number, changes: readonly ReportChange[]): JobChangeSummary {
  const count = (kind: ReportKind, change: ChangeType) => changes.filter((row) => row.kind === kind && row.change === change).length;
  const counts = (kind: ReportKind) => ({ new: count(kind, 'new'), resolved: count(kind, 'resolved'), unchanged: count(kind, 'unchanged') });
  return {
    previousJobId,
    phantoms: counts('phantom'),
    orphans: counts('orphan'),
    mismatches: { ...counts('mismatch'), changed: count('mismatch', 'changed') },
  };
}
