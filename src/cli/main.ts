import { Command, CommanderError } from 'commander';
import { InvalidInputError, messageOf } from '../errors.js';
import { type CliIO, type RegisterCommand, redact, writeLine } from './common.js';
import { registerDemo } from './demo.js';
import { registerJobs } from './jobs.js';
import { registerReport } from './report.js';
import { registerRun } from './run.js';
import { registerSchema } from './schema.js';

const COMMANDS: readonly RegisterCommand[] = [registerDemo, registerRun, registerReport, registerJobs, registerSchema];

/** Exit codes: 0 success, 1 the work failed, 2 the command line was wrong. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Runs the `orca-reconcile` command line with `argv` (without the node and script entries) and
 * resolves to the process exit code. Errors are printed as one line on `io.stderr`.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const program = new Command('orca-reconcile')
    .description('Reconcile an ORCA archive catalog with its S3 inventory listing, inside PostgreSQL.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: () => undefined,
    })
    .showHelpAfterError(false);
  for (const register of COMMANDS) register(program, io);
  program.commands.forEach((command) => command.exitOverride());

  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end the parse this way too.
      if (error.exitCode === 0) return EXIT.ok;
      // No command given: commander has already printed the help on stderr.
      if (error.code === 'commander.help') return EXIT.usage;
      writeLine(io.stderr, `orca-reconcile: ${error.message.replace(/^error: /, '')}`);
      return EXIT.usage;
    }
    const message = databaseUrls(argv, io).reduce((text, url) => redact(text, url), oneLine(messageOf(error)));
    writeLine(io.stderr, `orca-reconcile: ${message}`);
    return error instanceof InvalidInputError ? EXIT.usage : EXIT.failed;
  }
}

/** Every database URL the command line or the environment holds, for redaction. */
function databaseUrls(argv: readonly string[], io: CliIO): string[] {
  const urls: string[] = [];
  argv.forEach((arg, index) => {
    if (arg === '--database-url' && argv[index + 1] !== undefined) urls.push(argv[index + 1]!);
    else if (arg.startsWith('--database-url=')) urls.push(arg.slice('--database-url='.length));
  });
  const fromEnv = io.env['DATABASE_URL'];
  if (fromEnv) urls.push(fromEnv);
  return urls.filter((url) => url !== '');
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function packageVersion(): string {
  // Defined at build time by tsup, and by vitest for tests that run the source.
  return typeof __PACKAGE_VERSION__ === 'string' ? __PACKAGE_VERSION__ : '0.0.0';
}

declare const __PACKAGE_VERSION__: string | undefined;
