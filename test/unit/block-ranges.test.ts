import { describe, expect, it } from 'vitest';
import { blockRanges } from '../../src/copy.js';

describe('blockRanges: the block ranges a side is copied in', () => {
  it('covers every block once, the last range open-ended for blocks added later', () => {
    expect(blockRanges(10, 4)).toEqual([[0, 3], [3, 6], [6, 9], [9, null]]);
    expect(blockRanges(8, 2)).toEqual([[0, 4], [4, null]]);
  });

  it('never makes more ranges than blocks, and one open range for an empty table', () => {
    expect(blockRanges(2, 8)).toEqual([[0, 1], [1, null]]);
    expect(blockRanges(0, 8)).toEqual([[0, null]]);
  });
});
