import { describe, expect, it } from 'vitest';
import { retryError } from '../../src/index.js';

const transient = (): Error => Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });

/**
 * A clock that only moves when the code under test sleeps (or when an attempt says it took
 * time), so the deadline arithmetic is exact and no real time passes.
 */
function virtualClock() {
  let now = 0;
  const waits: number[] = [];
  return {
    waits,
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
    sleep: async (ms: number) => {
      waits.push(ms);
      now += ms;
    },
  };
}

/** A function that always fails with a transient error, counting its calls. */
function alwaysFailing(onCall?: () => void) {
  const calls = { count: 0 };
  const errors: Error[] = [];
  const fn = async (): Promise<string> => {
    calls.count += 1;
    onCall?.();
    const error = transient();
    errors.push(error);
    throw error;
  };
  return { fn, calls, errors };
}

describe('retryError with a deadline', () => {
  it('makes only the retries whose backoff ends before the deadline, then throws the last error', async () => {
    // Prepare: waits of 1 s, 2 s, 4 s; a deadline 3.5 s away leaves room for the first two only.
    const clock = virtualClock();
    const { fn, calls, errors } = alwaysFailing();
    const warnings: string[] = [];
    const wrapped = retryError({
      sleep: clock.sleep,
      now: clock.now,
      random: () => 0,
      deadline: 3_500,
      operation: 'generate reports',
      logger: { warn: (message: string) => void warnings.push(message) },
    })(fn);

    // Act
    const thrown = await wrapped().catch((error: unknown) => error);

    // Assess
    expect(thrown).toBe(errors[2]);
    expect(calls.count).toBe(3);
    expect(clock.waits).toEqual([1_000, 2_000]);
    expect(warnings).toEqual([
      'generate reports failed, retry 1 of 3: connection reset',
      'generate reports failed, retry 2 of 3: connection reset',
    ]);
  });

  it('makes all three retries when the deadline is far enough away', async () => {
    const clock = virtualClock();
    const { fn, calls } = alwaysFailing();

    await expect(
      retryError({ sleep: clock.sleep, now: clock.now, random: () => 0, deadline: 7_001 })(fn)(),
    ).rejects.toThrow('connection reset');

    expect(calls.count).toBe(4);
    expect(clock.waits).toEqual([1_000, 2_000, 4_000]);
  });

  it('does not retry when the wait would end exactly at the deadline', async () => {
    const clock = virtualClock();
    const { fn, calls } = alwaysFailing();

    await expect(retryError({ sleep: clock.sleep, now: clock.now, random: () => 0, deadline: 1_000 })(fn)()).rejects.toThrow(
      'connection reset',
    );

    expect(calls.count).toBe(1);
    expect(clock.waits).toEqual([]);
  });

  it('counts the jitter in the wait it compares with the deadline', async () => {
    // 1 s of backoff fits before 1.4 s, but 1 s plus 0.5 s of jitter does not.
    const clock = virtualClock();
    const { fn, calls } = alwaysFailing();

    await expect(retryError({ sleep: clock.sleep, now: clock.now, random: () => 0.5, deadline: 1_400 })(fn)()).rejects.toThrow(
      'connection reset',
    );

    expect(calls.count).toBe(1);
    expect(clock.waits).toEqual([]);
  });

  it('counts the time the attempts themselves take', async () => {
    // Prepare: each attempt takes 0.9 s. After the first (t = 0.9 s) a 1 s wait fits before
    // 2.5 s; after the second (t = 2.8 s) nothing does.
    const clock = virtualClock();
    const { fn, calls } = alwaysFailing(() => clock.advance(900));

    // Act
    const outcome = retryError({ sleep: clock.sleep, now: clock.now, random: () => 0, deadline: 2_500 })(fn)();

    // Assess
    await expect(outcome).rejects.toThrow('connection reset');
    expect(calls.count).toBe(2);
    expect(clock.waits).toEqual([1_000]);
  });

  it('still makes the first attempt when the deadline has already passed, but no retry', async () => {
    const clock = virtualClock();
    clock.advance(10_000);
    const { fn, calls } = alwaysFailing();

    await expect(retryError({ sleep: clock.sleep, now: clock.now, random: () => 0, deadline: 5_000 })(fn)()).rejects.toThrow(
      'connection reset',
    );

    expect(calls.count).toBe(1);
    expect(clock.waits).toEqual([]);
  });

  it('resolves when a retry made before the deadline succeeds', async () => {
    const clock = virtualClock();
    let calls = 0;
    const fn = async (): Promise<string> => {
      calls += 1;
      if (calls === 1) throw transient();
      return 'done';
    };

    await expect(retryError({ sleep: clock.sleep, now: clock.now, random: () => 0, deadline: 1_001 })(fn)()).resolves.toBe('done');

    expect(calls).toBe(2);
    expect(clock.waits).toEqual([1_000]);
  });
});
