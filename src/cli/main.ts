import { Command, CommanderError } from 'commander';
import { InvalidInputError, messageOf } from '../errors.js';
import { type CliIO, type RegisterCommand, CONNECTION_HELP, EXIT, checkExpanded, errorLine, writeLine } from './common.js';
import { registerDemo } from './demo.js';
import { registerDiff } from './diff.js';
import { registerJobs } from './jobs.js';
import { registerReport } from './report.js';
import { registerRun } from './run.js';
import { registerSchema } from './schema.js';

const COMMANDS: readonly RegisterCommand[] = [registerDemo, registerRun, registerReport, registerDiff, registerJobs, registerSchema];

/**
 * Runs the `orca-reconcile` command line with `argv` (without the node and script entries) and
 * resolves to the process exit code. Errors are printed as one line on `io.stderr`.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  // Subcommands inherit the exit override and the output configuration.
  const program = new Command('orca-reconcile')
    .description('Reconcile an ORCA archive catalog with its S3 inventory listing, inside PostgreSQL.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: () => undefined,
    });
  for (const register of COMMANDS) register(program, io);
  // Before any connection: --expanded asks for a table, whichever command prints it.
  program.hook('preAction', (_program, command) => checkExpanded(command.opts()));
  // Every command that connects says where it finds the database.
  for (const command of program.commands) {
    if (command.options.some((option) => option.long === '--database-url')) command.addHelpText('after', CONNECTION_HELP);
  }

  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    // --help and --version end the parse this way too.
    if (error instanceof CommanderError && error.exitCode === 0) return EXIT.ok;
    // No command given: commander has already printed the help on stderr.
    if (error instanceof CommanderError && error.code === 'commander.help') return EXIT.usage;
    writeLine(io.stderr, `orca-reconcile: ${errorMessage(error, argv, io.env)}`);
    // Usage errors: commander's own, those of the flag parsers, and the library's input checks.
    return error instanceof CommanderError || error instanceof InvalidInputError ? EXIT.usage : EXIT.failed;
  }
}

/**
 * The one line an error is reported as, without any database URL the command line or the
 * environment holds, nor the password of PGPASSWORD.
 */
export function errorMessage(error: unknown, argv: readonly string[], env: CliIO['env']): string {
  const message = error instanceof CommanderError ? error.message.replace(/^error: /, '') : messageOf(error);
  const password = env['PGPASSWORD'];
  return errorLine(message, databaseUrls(argv, env), password ? [password] : []);
}

/** Every database URL the command line or the environment holds, for redaction. */
function databaseUrls(argv: readonly string[], env: CliIO['env']): string[] {
  const urls: string[] = [];
  argv.forEach((arg, index) => {
    if (arg === '--database-url' && argv[index + 1] !== undefined) urls.push(argv[index + 1]!);
    else if (arg.startsWith('--database-url=')) urls.push(arg.slice('--database-url='.length));
  });
  const fromEnv = env['DATABASE_URL'];
  if (fromEnv) urls.push(fromEnv);
  return urls.filter((url) => url !== '');
}

function packageVersion(): string {
  // Defined at build time by tsup, and by vitest for tests that run the source.
  return typeof __PACKAGE_VERSION__ === 'string' ? __PACKAGE_VERSION__ : '0.0.0';
}

declare const __PACKAGE_VERSION__: string | undefined;
