#!/usr/bin/env node

// Checked before the command line loads: on an older Node it would fail later with errors that do
// not name the cause (commander needs require(esm), the demo node:sqlite). Keep in step with
// "engines" in package.json.
const REQUIRED_NODE = 'Node.js 22 (22.13 or later) or Node.js 24 or later';
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major === 22 ? minor < 13 : major < 24) {
  process.stderr.write(`orca-reconcile: Node.js ${process.versions.node} is not supported: use ${REQUIRED_NODE}\n`);
  process.exit(1);
}

// The demo's SQS emulator uses node:sqlite, for which Node 22 prints "ExperimentalWarning: SQLite
// is an experimental feature" on stderr. That one warning is dropped in this process; every other
// warning is printed as usual, and the library itself never touches process warnings.
const emitWarning = process.emitWarning;
process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]): void {
  const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: unknown } | undefined)?.type;
  const message = typeof warning === 'string' ? warning : warning.message;
  if (type === 'ExperimentalWarning' && message.startsWith('SQLite is an experimental feature')) return;
  (emitWarning as (...args: unknown[]) => void).call(this, warning, ...rest);
} as typeof process.emitWarning;

// Output piped into a reader that stops early (`| head`): end quietly, as other tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

// Loaded only now, after the check above.
const argv = process.argv.slice(2);
import('./main.js')
  .then(async ({ errorMessage, runCli }) => {
    try {
      process.exitCode = await runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env });
    } catch (error) {
      process.stderr.write(`orca-reconcile: ${errorMessage(error, argv, process.env)}\n`);
      process.exitCode = 1;
    }
  })
  .catch((error: unknown) => {
    process.stderr.write(`orca-reconcile: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
