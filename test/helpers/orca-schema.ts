import { orcaTablesSql, partitionName } from '../../src/sql/ddl.js';
import type { TestDatabase } from './database.js';

export { partitionName };

/** The ORCA tables the library's own `orca-reconcile schema` command creates. */
export function orcaSchemaDdl(schema: string, buckets: readonly string[]): string {
  return orcaTablesSql(schema, buckets);
}

/** Creates the ORCA schema `schema` with one partition per bucket; returns a function that drops it. */
export async function createOrcaSchema(
  database: TestDatabase,
  schema: string,
  buckets: readonly string[],
): Promise<() => Promise<void>> {
  await database.exec(orcaTablesSql(schema, buckets));
  return () => database.exec(`DROP SCHEMA "${schema}" CASCADE`);
}
