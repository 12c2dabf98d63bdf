// Runs generateReports once in a fresh process, as a Lambda would, and prints that process's
// peak RSS in bytes. Started by bench/reconcile.ts so the figure holds the library alone.
import pg from 'pg';
import { generateReports } from '../dist/index.js';

const [url, schema, jobId, location] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: url, max: 2 });
await generateReports(pool, { jobId: Number(jobId), orcaArchiveLocation: location! }, { schema });
await pool.end();
process.stdout.write(String(process.resourceUsage().maxRSS * 1024));
