import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DatabaseError,
  DifferentLocationsError,
  InvalidInputError,
  InventoryNotLoadedError,
  JobNotFoundError,
  JobNotSuccessfulError,
  LocationMismatchError,
  NoPreviousJobError,
  QueueError,
  StaleInventoryError,
  SupersededJobError,
  TimeoutError,
  isRefusal,
} from '../../src/index.js';

describe('isRefusal', () => {
  it.each([
    ['InvalidInputError', new InvalidInputError('jobId', 'bad')],
    ['JobNotFoundError', new JobNotFoundError(1)],
    ['LocationMismatchError', new LocationMismatchError(1, 'a-bucket', 'b-bucket')],
    ['InventoryNotLoadedError', new InventoryNotLoadedError(1)],
    ['StaleInventoryError', new StaleInventoryError(1, 2, 'a-bucket')],
    ['SupersededJobError', new SupersededJobError(1, 2, 'a-bucket')],
    ['JobNotSuccessfulError', new JobNotSuccessfulError(1, 4)],
    ['NoPreviousJobError', new NoPreviousJobError(1, 'a-bucket')],
    ['DifferentLocationsError', new DifferentLocationsError(2, 'a-bucket', 1, 'b-bucket')],
  ])('is true for %s: the request cannot be carried out', (_name, error) => {
    expect(isRefusal(error)).toBe(true);
  });

  it.each([
    ['ConfigurationError', new ConfigurationError('AWS_REGION', 'missing')],
    ['TimeoutError', new TimeoutError('generate reports', 10, 5)],
    ['DatabaseError', new DatabaseError('generate reports', new Error('boom'))],
    ['QueueError', new QueueError('https://sqs.us-west-2.amazonaws.com/1/q', new Error('boom'))],
    ['a plain Error', new Error('boom')],
    ['a string', 'boom'],
    ['undefined', undefined],
  ])('is false for %s', (_name, error) => {
    expect(isRefusal(error)).toBe(false);
  });
});
