import type { KV } from '@nats-io/kv';
import { hostKey, parseJson, type HostRecord } from '../../../agent/nats/protocol.js';

/**
 * Watches the host records (KV `hosts.*`) and calls `onReturn` with a host that (re)connects, once
 * it says it is ready (it has converged on the desired releases by itself first): one not seen
 * since the watch began, one whose agent started again (another `startedAt`), or one whose last
 * beat before this one was stale. The records already there when the watch begins only seed what
 * is known (service start-up reconciles those hosts itself). Returns the undo.
 */
export async function watchHostReturns(kv: KV, stale: (record: HostRecord, at: number) => boolean, onReturn: (host: string) => void): Promise<() => void> {
  const watch = await kv.watch({ key: hostKey('*') });
  const seen = new Map<string, HostRecord>();
  void (async () => {
    for await (const entry of watch) {
      const record = entry.value.length ? parseJson<HostRecord>(entry.value) : undefined;
      if (!record) continue;
      const before = seen.get(record.host);
      seen.set(record.host, record);
      if (!entry.isUpdate || record.ready === false) continue;
      const back = before === undefined || before.startedAt !== record.startedAt || before.ready === false || stale(before, record.heartbeatAt);
      if (back) onReturn(record.host);
    }
  })().catch(() => undefined);
  return () => watch.stop();
}
