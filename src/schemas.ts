/**
 * The Step Functions input of the reconcile step.
 *
 * @example
 * ```ts
 * const event: ReconcileEvent = {
 *   event: { jobId: 42, orcaArchiveLocation: 'prefix-orca-primary', messageReceiptHandle: 'AQEB...' },
 * };
 * ```
 * @category Reconcile
 */
export interface ReconcileEvent {
  event: {
    /** Id of the staged `reconcile_job`. */
    jobId: number;
    /** Archive bucket the job's inventory listing belongs to. */
    orcaArchiveLocation: string;
    /** Receipt handle of the SQS message that started the run. */
    messageReceiptHandle: string;
  };
}

/**
 * The step's output: the job id, and the number of rows written to each report.
 *
 * @example
 * ```ts
 * const output: ReconcileOutput = { jobId: 42, phantoms: 3, orphans: 0, mismatches: 1 };
 * ```
 * @category Reconcile
 */
export interface ReconcileOutput {
  jobId: number;
  phantoms: number;
  orphans: number;
  mismatches: number;
}

/**
 * JSON Schema (draft 2020-12) of {@link ReconcileEvent}, for Step Functions definitions and
 * validators such as Ajv. The handler checks the same rules itself.
 *
 * @example
 * ```ts
 * import Ajv from 'ajv/dist/2020.js';
 * import { inputSchema } from 'orca-reconcile';
 *
 * const valid = new Ajv().compile(inputSchema)(event);
 * ```
 * @category Reconcile
 */
export const inputSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'orca-reconcile input',
  type: 'object',
  required: ['event'],
  properties: {
    event: {
      type: 'object',
      required: ['jobId', 'orcaArchiveLocation', 'messageReceiptHandle'],
      properties: {
        jobId: {
          type: 'integer',
          minimum: 1,
          maximum: Number.MAX_SAFE_INTEGER,
          description: 'Id of the staged reconcile_job.',
        },
        orcaArchiveLocation: {
          type: 'string',
          pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$',
          not: { anyOf: [{ pattern: '\\.\\.' }, { pattern: '^[0-9]{1,3}(\\.[0-9]{1,3}){3}$' }] },
          description: 'Name of the ORCA archive bucket the job covers.',
        },
        messageReceiptHandle: {
          type: 'string',
          minLength: 1,
          maxLength: 8192,
          description: 'Receipt handle of the SQS message that started the run.',
        },
      },
    },
  },
} as const;

/**
 * JSON Schema (draft 2020-12) of {@link ReconcileOutput}.
 *
 * @example
 * ```ts
 * import { outputSchema } from 'orca-reconcile';
 *
 * console.log(outputSchema.required); // ['jobId', 'phantoms', 'orphans', 'mismatches']
 * ```
 * @category Reconcile
 */
export const outputSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'orca-reconcile output',
  type: 'object',
  required: ['jobId', 'phantoms', 'orphans', 'mismatches'],
  additionalProperties: false,
  properties: {
    jobId: { type: 'integer', minimum: 1, description: 'Id of the reconciled job.' },
    phantoms: { type: 'integer', minimum: 0, description: 'Rows written to reconcile_phantom_report.' },
    orphans: { type: 'integer', minimum: 0, description: 'Rows written to reconcile_orphan_report.' },
    mismatches: {
      type: 'integer',
      minimum: 0,
      description: 'Rows written to reconcile_catalog_mismatch_report.',
    },
  },
} as const;
