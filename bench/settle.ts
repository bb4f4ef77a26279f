/**
 * Before a timed side of a figure, on both sides: this process's own garbage (packing a bundle, the
 * pollers' answers, 5,000 generated files) is collected now, not by V8's background threads while
 * the side being measured needs the CPU (they take ~2 ms of 2 cores in a hot deploy's window).
 * `npm run bench` runs node with --expose-gc; without it this only pauses.
 */
export async function settle(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}

const SETTLE_MS = 20;
