import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';

// The public runtime API, sorted. Adding, removing or renaming an export is a change of the
// package's contract: update this list, the README's API section and the CHANGELOG together.
const RUNTIME_EXPORTS = [
  'AbortError',
  'ConfigurationError',
  'DatabaseError',
  'DifferentLocationsError',
  'InvalidInputError',
  'InventoryNotLoadedError',
  'JobNotFoundError',
  'JobNotSuccessfulError',
  'LocationMismatchError',
  'NoPreviousJobError',
  'OrcaReconcileError',
  'OrcaStatus',
  'QueueError',
  'RunLostError',
  'RunNotReadyError',
  'StaleInventoryError',
  'SupersededJobError',
  'TimeoutError',
  'compareJobs',
  'createHandler',
  'createOrcaTables',
  'createProgressTables',
  'generateReports',
  'inputSchema',
  'isRefusal',
  'isTransientDatabaseError',
  'outputSchema',
  'parseReconcileEvent',
  'progressTablesSql',
  'readReport',
  'readReportPage',
  'removeJobFromQueue',
  'retryError',
  'summarizeJobChanges',
  'task',
  'taskStep',
  'updateJob',
];

// Exports that are data, not functions or classes.
const CONSTANTS = ['OrcaStatus', 'inputSchema', 'outputSchema'];

// The error classes: OrcaReconcileError and one subclass per kind of failure.
const ERROR_CLASSES = [
  'AbortError',
  'ConfigurationError',
  'DatabaseError',
  'DifferentLocationsError',
  'InvalidInputError',
  'InventoryNotLoadedError',
  'JobNotFoundError',
  'JobNotSuccessfulError',
  'LocationMismatchError',
  'NoPreviousJobError',
  'OrcaReconcileError',
  'QueueError',
  'RunLostError',
  'RunNotReadyError',
  'RunLostError',
  'RunNotReadyError',
  'StaleInventoryError',
  'SupersededJobError',
  'TimeoutError',
];

describe('the public API of src/index.ts', () => {
  it('exports exactly the pinned runtime names', () => {
    // Prepare
    const expected = [...RUNTIME_EXPORTS].sort();

    // Act
    const actual = Object.keys(api).sort();

    // Assess
    expect(actual).toEqual(expected);
  });

  it('exports a function or class for every name except the constants', () => {
    // Prepare
    const callables = RUNTIME_EXPORTS.filter((name) => !CONSTANTS.includes(name));

    // Act
    const kinds = Object.fromEntries(callables.map((name) => [name, typeof (api as Record<string, unknown>)[name]]));

    // Assess
    expect(kinds).toEqual(Object.fromEntries(callables.map((name) => [name, 'function'])));
  });

  it('exports the constants as plain objects', () => {
    // Prepare
    const values = CONSTANTS.map((name) => (api as Record<string, unknown>)[name]);

    // Act
    const prototypes = values.map((value) => (typeof value === 'object' && value !== null ? Object.getPrototypeOf(value) : value));

    // Assess
    expect(prototypes).toEqual(CONSTANTS.map(() => Object.prototype));
  });

  it('exports every error class as OrcaReconcileError or a subclass of it', () => {
    // Prepare
    const classes = ERROR_CLASSES.map((name) => (api as Record<string, unknown>)[name] as abstract new (...args: never[]) => unknown);

    // Act
    const subclasses = classes.filter((cls) => cls === api.OrcaReconcileError || cls.prototype instanceof api.OrcaReconcileError);

    // Assess
    expect(ERROR_CLASSES.every((name) => RUNTIME_EXPORTS.includes(name))).toBe(true);
    expect(subclasses).toHaveLength(ERROR_CLASSES.length);
  });
});
