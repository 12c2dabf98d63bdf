import { type Queryable, withTransaction } from '../database.js';
import {
  createOrcaTablesIn,
  createProgressTables,
  inventoryTableName,
  partitionBoundsSql,
  progressTablesSql,
  validatePartitionBucket,
} from '../sql/ddl.js';
import { DatabaseError, InvalidInputError, OrcaReconcileError } from '../errors.js';
import { quoteSchema } from '../sql/schema.js';
import { type RegisterCommand, databaseUrlOption, flagSchema, libraryCheck, withDatabase, writeLine } from './common.js';

interface SchemaFlags {
  databaseUrl?: string;
  schema: string;
  bucket?: string[];
  progress?: boolean;
  print?: boolean;
}

const flagBucket = libraryCheck((value) => validatePartitionBucket(value, '--bucket'));

/** Repeatable `--bucket`: each value is checked as it is read, so a bad one stops the command before it connects. */
function collectBucket(value: string, previous: string[] | undefined): string[] {
  const bucket = flagBucket(value);
  return previous?.includes(bucket) ? previous : [...(previous ?? []), bucket];
}

/**
 * `orca-reconcile schema`: creates the ORCA catalog and reconciliation tables, with one inventory
 * partition per `--bucket`, in one transaction. Every statement is idempotent, so running it
 * again succeeds and only adds partitions of new buckets.
 */
export const registerSchema: RegisterCommand = (program, io) => {
  program
    .command('schema')
    .summary('Create the ORCA tables and one inventory partition per bucket (idempotent).')
    .description(
      'Create the ORCA catalog and reconciliation tables in one transaction, with one inventory partition ' +
        "per --bucket, and the library's progress tables. Safe to run again: only what is missing is added. " +
        'For development and test databases: production ORCA creates its own tables, and needs only ' +
        '--progress (or the SQL of --progress --print).',
    )
    .addOption(databaseUrlOption())
    .option('--schema <name>', 'PostgreSQL schema of the ORCA tables', flagSchema, 'orca')
    .option('--bucket <name>', 'archive bucket that gets an inventory partition (repeatable)', collectBucket)
    .option('--progress', "only the library's progress tables, for pieced runs (for an ORCA database that has its own tables)")
    .option('--print', 'write the SQL of --progress to standard output instead of running it (no connection)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ orca-reconcile schema --database-url postgres://orca@127.0.0.1:5432/orca \\\n' +
        '      --bucket prefix-orca-primary --bucket prefix-orca-secondary\n' +
        '  schema "orca" ready; inventory partitions: prefix-orca-primary, prefix-orca-secondary\n' +
        '  $ orca-reconcile schema --progress --print > orca-reconcile-progress.sql',
    )
    .action(async (flags: SchemaFlags) => {
      if (flags.print && !flags.progress) throw new InvalidInputError('--print', '--print goes with --progress: it prints the progress tables\' SQL');
      if (flags.progress && flags.bucket) throw new InvalidInputError('--bucket', '--bucket does not go with --progress, which creates only the progress tables');
      if (flags.print) {
        io.stdout.write(progressTablesSql(flags.schema));
        return;
      }
      if (flags.progress) {
        await withDatabase(flags, io, (pool) => createProgressTables(pool, { schema: flags.schema }), 'create the progress tables');
        writeLine(io.stdout, `progress tables ready in schema "${flags.schema}": orca_reconcile_run, orca_reconcile_piece`);
        return;
      }
      const partitions = await withDatabase(
        flags,
        io,
        (pool) =>
          withTransaction(pool, async (tx) => {
            await createOrcaTablesIn(tx, flags.schema, flags.bucket ?? []);
            return listPartitionBuckets(tx, flags.schema);
          }).catch((error: unknown) => {
            throw error instanceof OrcaReconcileError ? error : new DatabaseError('create the ORCA tables', error);
          }),
        'create the ORCA tables',
      );
      writeLine(io.stdout, `schema "${flags.schema}" ready; inventory partitions: ${partitions.length ? partitions.join(', ') : 'none'}`);
    });
};

/** The buckets that have an inventory partition in `schema`, whoever created them, sorted. */
async function listPartitionBuckets(db: Queryable, schema: string): Promise<string[]> {
  const { rows } = await db.query(partitionBoundsSql, [inventoryTableName(quoteSchema(schema))]);
  const buckets = (rows as { bound: string | null }[]).flatMap(({ bound }) =>
    // "FOR VALUES IN ('a', 'b')": bucket names hold no quote, but undouble them all the same.
    [...(bound ?? '').matchAll(/'((?:[^']|'')*)'/g)].map((match) => match[1]!.replaceAll("''", "'")),
  );
  return buckets.sort();
}
