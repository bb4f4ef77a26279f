import { describe, expect, it } from 'vitest';
import { median, percentile, ratio, summarize } from '../../bench/stats.js';

describe('bench statistics', () => {
  it('median of odd and even counts, whatever the order', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('nearest-rank percentiles: p99 of 100 samples is the 99th, of 10 samples the largest', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
    expect(percentile([7], 0)).toBe(7);
  });

  it('refuses no samples and percentiles outside 0..100', () => {
    expect(() => median([])).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([], 50)).toThrow(RangeError);
  });

  it('summarize rounds to 2 digits; ratio survives a zero denominator', () => {
    expect(summarize([1.234, 2.345, 3.456])).toEqual({ n: 3, median: 2.35, p99: 3.46, min: 1.23, max: 3.46 });
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(1, 0)).toBe(Number.POSITIVE_INFINITY);
    expect(ratio(0, 0)).toBe(1);
  });
});
