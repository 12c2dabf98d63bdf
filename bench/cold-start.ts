// Cold start: import the built package and construct the handler in fresh Node processes, and
// the size of dist/.   npm run bench:cold-start [-- --processes 10]
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './report.js';

const { values: args } = parseArgs({ options: { processes: { type: 'string', default: '10' } } });
const processes = Number(args.processes);
const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const DOC = new URL('../docs/performance.md', import.meta.url);

function measure(format: 'esm' | 'cjs'): number[] {
  const load =
    format === 'esm'
      ? `const m = await import(${JSON.stringify(`${dist}index.js`)});`
      : `const m = require(${JSON.stringify(`${dist}index.js`)});`;
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
const kB = (bytes: number): string => (bytes / 1024).toFixed(1);
const total = files.reduce((sum, file) => sum + file.bytes, 0);
// The library: its entry and the chunk it shares with the command line; the command line's own
// files (cli.js and the chunk it loads after its Node.js check) are never loaded by a library user.
const library = files.filter((file) => /^(index|chunk-)/.test(file.name)).reduce((sum, file) => sum + file.bytes, 0);
const range = (times: number[]) =>
  `${median(times).toFixed(1)} ms (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)})`;
const lines = [
  '### Cold start and size',
  '',
  `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench:cold-start\` on ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}.`,
  '',
  `- import + \`createHandler\`, median of ${processes} fresh processes: \`import\` ${range(esm)}; \`require\` ${range(cjs)}`,
  `- \`dist/\`: ${kB(total)} kB in ${files.length} files; the library entry without the command line: ${kB(library)} kB`,
  ...files.map((file) => `  - \`${file.name}\` ${kB(file.bytes)} kB`),
];
const section = lines.join('\n');
console.log(section);
const doc = readFileSync(DOC, 'utf8');
const begin = '<!-- bench:cold-start -->';
const end = '<!-- /bench:cold-start -->';
const block = `${begin}\n${section}\n${end}`;
writeFileSync(
  DOC,
  doc.includes(begin)
    ? doc.slice(0, doc.indexOf(begin)) + block + doc.slice(doc.indexOf(end) + end.length)
    : doc.replace('<!-- bench:results -->', `${block}\n\n<!-- bench:results -->`),
);
