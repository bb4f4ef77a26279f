/** Order statistics over samples (milliseconds, bytes, ...). Nearest-rank percentiles: no interpolation. */

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
}

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of no samples');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  const sorted = [...samples].sort((a, b) => a - b);
  // Nearest rank (the smallest value with at least p% of the samples at or below it).
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError('median of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function summarize(samples: readonly number[]): Summary {
  return {
    n: samples.length,
    median: round(median(samples)),
    p99: round(percentile(samples, 99)),
    min: round(Math.min(...samples)),
    max: round(Math.max(...samples)),
  };
}

/** `a / b`, rounded; Infinity-safe for a zero denominator (reported, never thrown). */
export function ratio(a: number, b: number, digits = 2): number {
  if (b === 0) return a === 0 ? 1 : Number.POSITIVE_INFINITY;
  return round(a / b, digits);
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export interface MedianInterval {
  low: number;
  high: number;
  /** What the interval covers: at least the confidence asked for, or all a few samples can give. */
  confidence: number;
}

/**
 * A distribution-free confidence interval for the median: the k-th smallest and k-th largest
 * samples, with k the largest for which Binomial(n, ½) puts at least `confidence` between them.
 * With too few samples for `confidence` (n < 6 for 95 %) it is the whole range, and says how sure.
 */
export function medianInterval(samples: readonly number[], confidence = 0.95): MedianInterval {
  const n = samples.length;
  if (n === 0) throw new RangeError('median interval of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  // X ~ Binomial(n, ½), the number of samples below the true median; [x(k), x(n+1-k)] covers it
  // with probability 1 - 2·P(X ≤ k-1).
  let term = 0.5 ** n;
  let cdf = term;
  let k = 1;
  for (let j = 1; j < n / 2; j++) {
    // Here cdf = P(X ≤ j-1), term becomes P(X = j): may k be j+1?
    term = (term * (n - j + 1)) / j;
    if (1 - 2 * (cdf + term) < confidence) break;
    cdf += term;
    k = j + 1;
  }
  return { low: sorted[k - 1] as number, high: sorted[n - k] as number, confidence: 1 - 2 * (k === 1 ? 0.5 ** n : cdf) };
}
