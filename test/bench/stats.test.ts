import { describe, expect, it } from 'vitest';
import { median, medianInterval, percentile, ratio, summarize } from '../../bench/stats.js';

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

  it('the median interval: the textbook order statistics for 16, 20 and 100 samples; the whole range below 6', () => {
    const ranks = (n: number) => medianInterval(Array.from({ length: n }, (_, i) => n - i));
    expect(ranks(16)).toMatchObject({ low: 4, high: 13 });
    expect(ranks(16).confidence).toBeCloseTo(0.9787, 4);
    expect(ranks(20)).toMatchObject({ low: 6, high: 15 });
    expect(ranks(100)).toMatchObject({ low: 40, high: 61 });
    expect(ranks(8)).toMatchObject({ low: 1, high: 8 });
    expect(ranks(3)).toEqual({ low: 1, high: 3, confidence: 0.75 });
    expect(medianInterval([0.97, 1.01, 0.99, 1.2, 0.5, 0.98, 1, 1.03, 0.96, 1.02, 0.995, 0.985, 1.005, 0.975, 1.015, 0.99], 0.9))
      .toMatchObject({ low: 0.98, high: 1.01 }); // the 5th and 12th of 16 cover 92 %
    expect(() => medianInterval([])).toThrow(RangeError);
  });
});
