// Runs the command line in this process, as src/cli/bin.ts does, then writes the process's peak
// resident set size in KiB to the file named by the first argument. Spawned by the memory test
// with `node --import tsx test/helpers/cli-rss.ts RSS_FILE report ...`.
import { writeFileSync } from 'node:fs';
import { runCli } from '../../src/cli/main.js';

const [rssFile, ...argv] = process.argv.slice(2);
if (!rssFile) throw new Error('usage: cli-rss.ts RSS_FILE ARGS...');
const code = await runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env });
writeFileSync(rssFile, String(process.resourceUsage().maxRSS));
process.exitCode = code;
