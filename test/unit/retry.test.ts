import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidInputError, isTransientDatabaseError, retryError } from '../../src/index.js';
import { backoffDelay } from '../../src/retry.js';

const withCode = (message: string, code: string): Error => Object.assign(new Error(message), { code });

/** A function that fails with the given errors, one per call, then resolves to 'done'. */
function failing(...errors: unknown[]) {
  const calls = { count: 0 };
  const fn = async (): Promise<string> => {
    const error = errors[calls.count];
    calls.count += 1;
    if (error !== undefined) throw error;
    return 'done';
  };
  return { fn, calls };
}

describe('retryError', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits backoffInSeconds * backoffFactor^n plus jitter before retry n', async () => {
    // Prepare
    const waits: number[] = [];
    const { fn, calls } = failing(new Error('a'), new Error('b'), new Error('c'));
    const wrapped = retryError({ sleep: async (ms) => void waits.push(ms), random: () => 0.25 })(fn);

    // Act
    const result = await wrapped();

    // Assess
    expect(result).toBe('done');
    expect(calls.count).toBe(4);
    expect(waits).toEqual([1250, 2250, 4250]);
  });

  it('honours custom backoff settings', async () => {
    const waits: number[] = [];
    const { fn } = failing(new Error('a'), new Error('b'));
    await retryError({ backoffInSeconds: 3, backoffFactor: 5, sleep: async (ms) => void waits.push(ms), random: () => 0 })(fn)();
    expect(waits).toEqual([3000, 15000]);
  });

  it('throws the last error itself after maxRetries retries, without a final wait', async () => {
    // Prepare
    const last = new Error('fourth');
    const waits: number[] = [];
    const { fn, calls } = failing(new Error('1'), new Error('2'), new Error('3'), last);

    // Act
    const outcome = retryError({ sleep: async (ms) => void waits.push(ms), random: () => 0 })(fn)();

    // Assess
    await expect(outcome).rejects.toBe(last);
    expect(calls.count).toBe(4);
    expect(waits).toEqual([1000, 2000, 4000]);
  });

  it('does not retry when shouldRetry says no', async () => {
    const fatal = withCode('duplicate key', '23505');
    const { fn, calls } = failing(fatal);
    const sleep = vi.fn(async () => {});
    await expect(retryError({ shouldRetry: isTransientDatabaseError, sleep })(fn)()).rejects.toBe(fatal);
    expect(calls.count).toBe(1);
    expect(sleep).not.toHaveBeenCalled();
  });

  it('retries transient database errors and stops at the first permanent one', async () => {
    const permanent = withCode('syntax error', '42601');
    const { fn, calls } = failing(withCode('deadlock detected', '40P01'), permanent);
    await expect(retryError({ shouldRetry: isTransientDatabaseError, sleep: async () => {} })(fn)()).rejects.toBe(permanent);
    expect(calls.count).toBe(2);
  });

  it('passes arguments through and keeps the result', async () => {
    const add = retryError({ sleep: async () => {} })(async (a: number, b: number) => a + b);
    await expect(add(2, 3)).resolves.toBe(5);
  });

  it('uses real timers by default: fake time advances through the spec backoff', async () => {
    // Prepare
    vi.useFakeTimers();
    const { fn, calls } = failing(new Error('a'), new Error('b'));
    const outcome = retryError({ random: () => 0 })(fn)();

    // Act and assess: no retry before its backoff has elapsed (timers may add a millisecond each).
    await vi.advanceTimersByTimeAsync(990);
    expect(calls.count).toBe(1);
    await vi.advanceTimersByTimeAsync(20);
    expect(calls.count).toBe(2);
    await vi.advanceTimersByTimeAsync(1970);
    expect(calls.count).toBe(2);
    await vi.advanceTimersByTimeAsync(50);
    await expect(outcome).resolves.toBe('done');
    expect(calls.count).toBe(3);
  });

  it('tells the logger about each retry', async () => {
    const warn = vi.fn();
    const { fn } = failing(new Error('flaky'));
    await retryError({ sleep: async () => {}, logger: { warn }, operation: 'delete SQS message' })(fn)();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toBe('delete SQS message failed, retry 1 of 3: flaky');
  });

  it.each([
    ['maxRetries', { maxRetries: -1 }],
    ['maxRetries', { maxRetries: 1.5 }],
    ['backoffInSeconds', { backoffInSeconds: Number.NaN }],
    ['backoffFactor', { backoffFactor: -2 }],
  ])('rejects a bad %s with a typed error', (field, options) => {
    expect(() => retryError(options)).toThrow(InvalidInputError);
    expect(() => retryError(options)).toThrow(expect.objectContaining({ field }));
  });

  it('computes backoffDelay from the spec formula', () => {
    expect(backoffDelay(0, 1, 2, () => 0.5)).toBe(1500);
    expect(backoffDelay(2, 1, 2, () => 0.999)).toBe(4999);
  });
});

describe('isTransientDatabaseError', () => {
  it.each([
    ['connection failure', withCode('x', '08006')],
    ['admin shutdown', withCode('terminating connection due to administrator command', '57P01')],
    ['too many connections', withCode('sorry, too many clients already', '53300')],
    ['serialization failure', withCode('could not serialize access', '40001')],
    ['deadlock', withCode('deadlock detected', '40P01')],
    ['refused connection', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['reset connection', withCode('read ECONNRESET', 'ECONNRESET')],
    ['pg connection terminated', new Error('Connection terminated unexpectedly')],
    ['wrapped in cause', new Error('outer', { cause: withCode('x', '40001') })],
    ['multi-address connect', new AggregateError([withCode('a', 'ECONNREFUSED')], 'all failed')],
  ])('%s is transient', (_name, error) => {
    expect(isTransientDatabaseError(error)).toBe(true);
  });

  it.each([
    ['unique violation', withCode('duplicate key', '23505')],
    ['foreign key violation', withCode('violates foreign key', '23503')],
    ['statement timeout', withCode('canceling statement due to statement timeout', '57014')],
    ['undefined table', withCode('relation does not exist', '42P01')],
    ['plain error', new Error('boom')],
    ['not an error', 'boom'],
    ['null', null],
  ])('%s is not transient', (_name, error) => {
    expect(isTransientDatabaseError(error)).toBe(false);
  });
});
