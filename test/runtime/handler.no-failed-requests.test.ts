import { afterEach, expect, it } from 'vitest';
import { hostApp } from '../../agent/index.js';
import { cleanupStack, serve, writeRelease } from '../helpers/release.js';

const t = cleanupStack();
afterEach(t.run);

it('answers every request, each from one coherent version, while the app is updated 20 times under load', async () => {
  const root = await t.root();
  const files = (n: number): Record<string, string> => ({
    'index.js': "const v = require('./version');\nmodule.exports = (req, res) => setTimeout(() => res.end(String(v)), 2);\n",
    'version.js': `module.exports = ${n};`,
  });
  const dirs: string[] = [];
  for (let n = 0; n <= 20; n++) dirs.push(await writeRelease(root, files(n)));
  const app = t.defer(await hostApp({ name: 'load', dir: dirs[0]! }));
  const server = t.defer(await serve(app.handler));

  let stop = false;
  const seen: number[] = [];
  const failures: string[] = [];
  const client = async (): Promise<void> => {
    while (!stop) {
      try {
        const res = await fetch(server.url);
        const body = await res.text();
        if (res.status !== 200) failures.push(`${res.status} ${body}`);
        else seen.push(Number(body));
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  const clients = Array.from({ length: 8 }, client);
  for (const [n, dir] of dirs.entries()) {
    if (n === 0) continue;
    expect((await app.update(dir)).outcome).toBe('hot');
    // A request that starts after the update sees the new version.
    expect(await server.get()).toBe(`200 ${n}`);
  }
  stop = true;
  await Promise.all(clients);
  expect(failures).toEqual([]);
  expect(seen.length).toBeGreaterThan(0);
  expect(seen.every((v) => Number.isInteger(v) && v >= 0 && v <= 20)).toBe(true);
});
