import { InvalidInputError } from '../errors.js';
import { IDENTIFIER, describe } from '../validation.js';

declare const quotedSchema: unique symbol;

/**
 * A schema name that has been checked against {@link IDENTIFIER} and double-quoted. Every
 * statement builder takes this type, so a raw, unchecked name can never reach SQL text.
 */
export type QuotedSchema = string & { readonly [quotedSchema]: true };

/**
 * Validates a PostgreSQL schema name and returns it double-quoted, ready to prefix table names.
 * Quoting keeps the name exactly as given (case-sensitive).
 */
export function quoteSchema(value: unknown, field = 'schema'): QuotedSchema {
  if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
    throw new InvalidInputError(
      field,
      `${field} must be a PostgreSQL identifier (1 to 63 characters: a letter or "_", then letters, digits, "_" or "$"), got ${describe(value)}`,
    );
  }
  return `"${value}"` as QuotedSchema;
}

/** The schema of the options, `orca` when none is given, quoted. */
export function schemaOf(options: { schema?: unknown } | undefined): QuotedSchema {
  return quoteSchema(options?.schema ?? 'orca');
}
