// Runs generateReports once in a fresh process, as a Lambda would, and prints that process's
// peak RSS in bytes. Started by bench/reconcile.ts so the figure holds the library alone.
import pg from 'pg';
import type * as Library from '../src/index.js';

// The built package, as a host installs it (not the TypeScript source).
const { generateReports } = (await import(new URL('../dist/index.js', import.meta.url).href)) as typeof Library;

const [url, schema, jobId, location] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: url, max: 2 });
await generateReports(pool, { jobId: Number(jobId), orcaArchiveLocation: location! }, { schema });
await pool.end();
process.stdout.write(String(process.resourceUsage().maxRSS * 1024));
