import type { WorkerState } from '../../agent/messages.js';
import type { ServiceContext } from './context.js';
import type { MetricsSource } from './metrics.js';
import type { HostView } from './nats/host-views.js';
import { hostViewsOf } from './routes/agents.js';

/** A scrape waits this long at most for an agent (a PM2 `describe` and a ping per worker) or for NATS. */
const SCRAPE_DEADLINE_MS = 2_000;

/**
 * The store's and the host agents' answers for the metrics' gauges; what does not answer in time is
 * left out. `context` is read at scrape time (the metrics are made before the context that holds them).
 */
export function metricsSource(context: () => ServiceContext): MetricsSource {
  return {
    apps: () => context().store.apps(),
    releases: async (app) => (await context().store.list(app)).length,
    hosts: () => withDeadline(hostViewsOf(context()), [] as HostView[]),
    workers: async (app) => (await Promise.all(context().options.agents.map((agent) =>
      withDeadline(agent.workers(app), [] as WorkerState[])))).flat(),
  };
}

function withDeadline<T>(promise: Promise<T>, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(resolve, SCRAPE_DEADLINE_MS, fallback);
    timer.unref();
  });
  return Promise.race([promise.catch(() => fallback), late]).finally(() => clearTimeout(timer));
}
