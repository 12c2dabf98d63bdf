import type { ReportKind, ReportRows } from '../../src/read-report.js';
import { reportColumns } from '../../src/read-report.js';
import type { TestDatabase } from './database.js';

export const REPORT_TABLE: Record<ReportKind, string> = {
  phantom: 'reconcile_phantom_report',
  orphan: 'reconcile_orphan_report',
  mismatch: 'reconcile_catalog_mismatch_report',
};

/** A report column's key in the library's typed rows: `key_path` is `keyPath`. */
export const camel = (column: string): string => column.replace(/_([a-z0-9])/g, (_m, letter: string) => letter.toUpperCase());

/**
 * The `index`-th row of a report for `jobId`, every column set. Keys are fixed-width ASCII so
 * that code-unit order is the server's order under any collation; sizes pass 2^32, and some pass
 * 2^53 with odd values no JavaScript number can hold, to prove int8 arrives exact; timestamps
 * carry milliseconds.
 */
export function reportRow<K extends ReportKind>(kind: K, jobId: number, index: number): ReportRows[K] {
  const i = BigInt(index);
  const n = String(index).padStart(3, '0');
  const time = (offsetDays: number) => new Date(Date.UTC(2025, 0, 1 + offsetDays, 5, 6, 7, index % 1000));
  // Collections and granules repeat, so the keyset compares all three key columns.
  const collectionId = `C${index % 3}`;
  const granuleId = `G${index % 2}`;
  const keyPath = `dir/${n}.h5`;
  const rows: { [P in ReportKind]: ReportRows[P] } = {
    phantom: {
      jobId: BigInt(jobId),
      collectionId,
      granuleId,
      filename: `${n}.h5`,
      keyPath,
      orcaEtag: `"p${n}"`,
      orcaLastUpdate: time(index),
      orcaSize: 2n ** 53n + 2n * i + 3n,
      orcaStorageClassId: (index % 2) + 1,
    },
    orphan: {
      jobId: BigInt(jobId),
      keyPath,
      etag: `"o${n}"`,
      lastUpdate: time(index),
      sizeInBytes: 2n ** 53n + 2n * i + 1n,
      storageClass: index % 2 === 0 ? 'GLACIER' : 'STANDARD',
    },
    mismatch: {
      jobId: BigInt(jobId),
      collectionId,
      granuleId,
      filename: `${n}.h5`,
      keyPath,
      cumulusArchiveLocation: 'cumulus-bucket',
      orcaEtag: `"c${n}"`,
      s3Etag: `"s${n}"`,
      orcaLastUpdate: time(index),
      s3LastUpdate: time(index + 1),
      orcaSizeInBytes: 2n ** 62n + 2n * i + 1n,
      s3SizeInBytes: i,
      orcaStorageClassId: 1,
      s3StorageClass: 'DEEP_ARCHIVE',
      discrepancyType: 'etag, size_in_bytes, storage_class',
    },
  };
  return rows[kind];
}

/** The order readReport promises: primary key after job_id. */
export function inKeyOrder<K extends ReportKind>(kind: K, rows: ReportRows[K][]): ReportRows[K][] {
  const key = (row: ReportRows[K]) => {
    const r = row as unknown as Record<string, string>;
    return kind === 'orphan' ? [r['keyPath']!] : [r['collectionId']!, r['granuleId']!, r['keyPath']!];
  };
  return [...rows].sort((a, b) => {
    const [ka, kb] = [key(a), key(b)];
    for (let i = 0; i < ka.length; i += 1) {
      if (ka[i]! < kb[i]!) return -1;
      if (ka[i]! > kb[i]!) return 1;
    }
    return 0;
  });
}

export async function insertReportRows<K extends ReportKind>(
  t: TestDatabase,
  schema: string,
  kind: K,
  rows: readonly ReportRows[K][],
): Promise<void> {
  const columns = reportColumns(kind);
  for (const row of rows) {
    const record = row as unknown as Record<string, unknown>;
    await t.query(
      `INSERT INTO "${schema}".${REPORT_TABLE[kind]} (${columns.join(', ')})
       VALUES (${columns.map((_c, i) => `$${i + 1}`).join(', ')})`,
      columns.map((column) => record[camel(column)]),
    );
  }
}
