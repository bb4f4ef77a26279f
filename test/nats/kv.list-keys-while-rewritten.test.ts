import { afterEach, beforeEach, expect } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../agent/nats/connect.js';
import { desiredKey, hostKey, type NatsNames } from '../../agent/nats/protocol.js';
import { destroyResources, listKeys, openResources, type ClusterResources } from '../../agent/nats/resources.js';
import { itWithNats, testNames, useNatsServer } from '../helpers/nats.js';

// The service lists `hosts.*` on every deployment and the hosts list the desired releases when they converge,
// while every host rewrites its own key each beat. KV.keys() can fail to end for a long
// time in that situation, and can yield one key twice and miss another. Each listing here must be exact and prompt while three writers rewrite their keys.

let nc: NatsConnection;
let names: NatsNames;
let resources: ClusterResources;

const nats = useNatsServer();

beforeEach(async () => {
  nc = await connectNats({ servers: nats.url });
  names = testNames();
  resources = await openResources(nc, names);
});

afterEach(async () => {
  await destroyResources(nc, names);
  await nc.close();
});

itWithNats('lists exactly the matching keys, promptly, while three hosts rewrite theirs every 20 ms', async () => {
  const hosts = ['a', 'b', 'c'];
  for (const h of hosts) await resources.kv.put(hostKey(h), JSON.stringify({ h }));
  await resources.kv.put(desiredKey('demo'), '{}');
  let writes = 0;
  const writers = hosts.map((h) => setInterval(() => {
    writes++;
    void resources.kv.put(hostKey(h), JSON.stringify({ h, at: Date.now(), pad: 'x'.repeat(2_000) })).catch(() => undefined);
  }, 20));
  try {
    const deadline = Date.now() + 4_000;
    let listings = 0;
    while (Date.now() < deadline || listings < 50) {
      const keys = await Promise.race([
        listKeys(resources, hostKey('*')),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`listing ${listings} took over 5 s`)), 5_000).unref()),
      ]);
      expect(keys, `listing ${listings}`).toEqual(hosts.map(hostKey));
      listings++;
    }
    expect(writes).toBeGreaterThan(30);
    expect(await listKeys(resources, desiredKey('*'))).toEqual([desiredKey('demo')]);
  } finally {
    for (const w of writers) clearInterval(w);
  }
});

itWithNats('lists a deleted key (its marker), which kv.get then answers without a value', async () => {
  await resources.kv.put(hostKey('a'), '{"h":"a"}');
  await resources.kv.put(hostKey('b'), '{"h":"b"}');
  await resources.kv.delete(hostKey('b'));
  expect(await listKeys(resources, hostKey('*'))).toEqual([hostKey('a'), hostKey('b')]);
  expect((await resources.kv.get(hostKey('b')))?.value.length ?? 0).toBe(0);
  expect(await listKeys(resources, desiredKey('*'))).toEqual([]);
});
