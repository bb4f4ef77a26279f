import type { HostRecord } from '../../../agent/nats/protocol.js';

/** `GET /v1/agents`: one entry per host that ever reported. */
export interface HostView {
  host: string;
  transport: 'nats' | 'in-process';
  hotdeploy?: string;
  lastHeartbeat?: string;
  alive: boolean;
  apps: Record<string, { version: string; workers: number; desired: string | null; lagging: boolean }>;
  /** Some app there is not on its desired (current) release, or not there at all. */
  lagging: boolean;
}

/** Host records (KV `hosts.*`) against the desired release of every app (KV `apps.*`), sorted by host. */
export function hostViews(records: HostRecord[], desired: Map<string, string>, alive: (record: HostRecord) => boolean): HostView[] {
  return [...records].sort((a, b) => (a.host < b.host ? -1 : 1)).map((record) => {
    const apps: HostView['apps'] = {};
    for (const [app, served] of Object.entries(record.apps)) {
      const want = desired.get(app) ?? null;
      apps[app] = { version: served.version, workers: served.workers.length, desired: want, lagging: want !== null && want !== served.version };
    }
    for (const [app, version] of desired) apps[app] ??= { version: '', workers: 0, desired: version, lagging: true };
    return {
      host: record.host, transport: 'nats', hotdeploy: record.hotdeploy, lastHeartbeat: new Date(record.heartbeatAt).toISOString(),
      alive: alive(record), apps, lagging: Object.values(apps).some((a) => a.lagging),
    };
  });
}
