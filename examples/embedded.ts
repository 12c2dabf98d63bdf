// Calling the library from your own code, on your own pool: write a job's reports, then read
// them back. Nothing here touches job statuses or SQS (`task` does that).
//
// Environment: DATABASE_URL (postgres://user:password@host:5432/database).
import pg from 'pg';
import { generateReports, readReport, readReportPage } from 'orca-reconcile';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const job = { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary' };

try {
  // One transaction: the job's earlier report rows, if any, are replaced by the new ones.
  const counts = await generateReports(pool, job);
  console.log(counts); // { phantoms: 3, orphans: 0, mismatches: 1 }

  // Every mismatch, streamed through a server-side cursor in primary-key order.
  for await (const row of readReport(pool, { jobId: job.jobId, kind: 'mismatch' })) {
    console.log(`${row.keyPath}: ${row.discrepancyType} (catalog ${row.orcaEtag}, S3 ${row.s3Etag})`);
  }

  // One page of orphans at a time, for an API: hand nextCursor back to get the next page.
  const page = await readReportPage(pool, { jobId: job.jobId, kind: 'orphan' }, { pageSize: 50 });
  console.log(page.rows.map((row) => row.keyPath), page.nextCursor ?? 'last page');
} finally {
  await pool.end();
}
