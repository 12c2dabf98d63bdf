import { describe, expect, it } from 'vitest';
import { forEachConcurrently } from '../../src/workers.js';

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('forEachConcurrently: the workers of a pieced run', () => {
  it('runs at most `workers` items at once and every item once', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await forEachConcurrently([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      running += 1;
      most = Math.max(most, running);
      await tick(5);
      done.push(item);
      running -= 1;
    });
    expect(most).toBe(3);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('after a failure takes no new item, and rejects only once the items in flight have ended', async () => {
    const started: number[] = [];
    const ended: number[] = [];
    const call = forEachConcurrently([1, 2, 3, 4, 5, 6], 2, async (item) => {
      started.push(item);
      if (item === 1) throw new Error('piece 1 broke');
      await tick(30);
      ended.push(item);
    });
    await expect(call).rejects.toThrow('piece 1 broke');
    // Item 2 was in flight when item 1 failed: it ended before the call rejected.
    expect(started).toEqual([1, 2]);
    expect(ended).toEqual([2]);
  });
});
