/**
 * How many workers (one host) or hosts (NATS) a canary push reaches first: `n`, or `n%` of them.
 * Shared by the settings reader, the deploy service and the CLI, so all three read `--canary` alike.
 */
export type CanarySize = { count: number } | { percent: number };

/** How long a canary may be watched: from 100 ms (tests, quick checks) to a day. */
export const MIN_CANARY_WATCH_MS = 100;
export const MAX_CANARY_WATCH_MS = 86_400_000;

/** The largest count a canary names (more workers than one host or cluster runs is a typo). */
export const MAX_CANARY_COUNT = 1000;

/**
 * `2`, `"2"` or `"25%"`; `null` for `0` / `"0"` / `"0%"` (no canary, overriding a default);
 * `undefined` when the value is none of these.
 */
export function parseCanarySize(value: unknown): CanarySize | null | undefined {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string') return undefined;
  const match = /^([0-9]{1,4})(%?)$/.exec(text.trim());
  if (!match) return undefined;
  const amount = Number(match[1]);
  if (amount === 0) return null;
  if (match[2] === '%') return amount <= 100 ? { percent: amount } : undefined;
  return amount <= MAX_CANARY_COUNT ? { count: amount } : undefined;
}

export function formatCanarySize(size: CanarySize): string {
  return 'percent' in size ? `${size.percent}%` : String(size.count);
}

/** How many of `total` take the release first: a percentage rounds up to at least one; never more than `total`. */
export function canaryCount(size: CanarySize, total: number): number {
  const wanted = 'percent' in size ? Math.max(1, Math.ceil((total * size.percent) / 100)) : size.count;
  return Math.min(wanted, total);
}
