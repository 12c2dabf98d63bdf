// Cold start: import the built package and construct the handler in fresh Node processes, and
// the size of dist/.   npm run bench:cold-start [-- --processes 10]
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './report.ts';

const { values: args } = parseArgs({ options: { processes: { type: 'string', default: '10' } } });
const processes = Number(args.processes);
const dist = fileURLToPath(new URL('../dist/', import.meta.url));

function measure(format: 'esm' | 'cjs'): number[] {
  const load =
    format === 'esm'
      ? `const m = await import(${JSON.stringify(`${dist}index.js`)});`
      : `const m = require(${JSON.stringify(`${dist}index.cjs`)});`;
  const script = `const t0 = performance.now(); ${load}
const handler = m.createHandler({ env: { AWS_REGION: 'us-east-1', INTERNAL_REPORT_QUEUE_URL: 'q', DB_CONNECT_INFO_SECRET_ARN: 's' } });
if (typeof handler !== 'function') throw new Error('no handler');
process.stdout.write(String(performance.now() - t0));`;
  const times: number[] = [];
  for (let i = 0; i < processes; i += 1) {
    const flags = format === 'esm' ? ['--input-type=module', '-e', script] : ['-e', `(async () => { ${script} })()`];
    times.push(Number(execFileSync(process.execPath, flags, { encoding: 'utf8' })));
  }
  return times;
}

const esm = measure('esm');
const cjs = measure('cjs');
const files = readdirSync(dist).map((name) => ({ name, bytes: statSync(`${dist}${name}`).size }));
const total = files.reduce((sum, file) => sum + file.bytes, 0);
console.log(`import + createHandler, median of ${processes} fresh processes:`);
console.log(`  ESM ${median(esm).toFixed(1)} ms (min ${Math.min(...esm).toFixed(1)}, max ${Math.max(...esm).toFixed(1)})`);
console.log(`  CJS ${median(cjs).toFixed(1)} ms (min ${Math.min(...cjs).toFixed(1)}, max ${Math.max(...cjs).toFixed(1)})`);
console.log(`dist/: ${(total / 1024).toFixed(1)} kB in ${files.length} files`);
for (const file of files) console.log(`  ${file.name} ${(file.bytes / 1024).toFixed(1)} kB`);
