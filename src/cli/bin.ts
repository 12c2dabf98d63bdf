#!/usr/bin/env node
import { errorMessage, runCli } from './main.js';

// Output piped into a reader that stops early (`| head`): end quietly, as other tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

const argv = process.argv.slice(2);
runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`orca-reconcile: ${errorMessage(error, argv, process.env)}\n`);
    process.exitCode = 1;
  },
);
