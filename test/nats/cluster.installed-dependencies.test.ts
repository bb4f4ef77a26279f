import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect } from 'vitest';
import { nodeTarget } from '../../agent/common/node-target.js';
import { inProcessHost, type InProcessHost } from '../helpers/in-process-host.js';
import { clusterBed, itWithNats, startHost, testNames, useNatsServer, type ClusterBed, type TestHost } from '../helpers/nats.js';
import { tempDir } from '../helpers/tmp.js';
import { answerOf, lockfileFor, OFFLINE_NPMRC, packIntoCache, type Packed } from '../install/helpers.js';
import { push } from './fixtures.js';

// Hosts behind NATS get the node_modules the service installed as their own object (no registry on
// the host), link them from a release of their own while the install stays the same, and refuse
// them when their Node cannot run what they were built for.

let bed: ClusterBed | undefined;

useNatsServer();
let work: { dir: string; cleanup: () => Promise<void> } | undefined;
const hosts: Array<{ agent: InProcessHost; host: TestHost }> = [];
let tiny: Packed;

function app(version: string, greeting: string): Record<string, string | object> {
  return {
    'package.json': { name: 'demo', version, main: 'index.js', hotdeploy: { port: 0 }, dependencies: { 'tiny-a': '^1.0.0' } },
    'package-lock.json': lockfileFor({ name: 'demo', version }, { 'tiny-a': '^1.0.0' }, [tiny]),
    'index.js': `const a = require('tiny-a');\nmodule.exports = (req, res) => res.end(${JSON.stringify(greeting)} + ' ' + a());\n`,
  };
}

async function addHost(name: string, target = nodeTarget()): Promise<InProcessHost> {
  const agent = inProcessHost(name);
  hosts.push({ agent, host: await startHost(bed!.names, agent, bed!.hostDir(name), 300, undefined, { nodeTarget: target }) });
  return agent;
}

/** The service (offline npm, its cache filled with tiny-a) behind NATS; each test's own. */
async function setUp(): Promise<void> {
  work = await tempDir('hotdeploy-nats-install-');
  const npmrc = path.join(work.dir, 'npmrc');
  await writeFile(npmrc, OFFLINE_NPMRC);
  bed = await clusterBed(testNames(), {}, { npmrc });
  [tiny] = await packIntoCache(work.dir, path.join(bed.dataDir, 'npm', 'cache'), [
    { name: 'tiny-a', version: '1.0.0', files: { 'index.js': "module.exports = () => 'a1';\n" } },
  ]) as [Packed];
}

afterEach(async () => {
  for (const { agent, host } of hosts.splice(0)) {
    await host.stop();
    await agent.close();
  }
  await bed?.close();
  await work?.cleanup();
});

itWithNats('a host takes the installed node_modules from the object store, then links them from its own release', async () => {
  await setUp();
  const a = await addHost('a');
  const first = await push(bed!.app, '1.0.0', app('1.0.0', 'one'));
  expect(first.deployment.status, first.deployment.reason).toBe('succeeded');
  expect(await answerOf(a.hosted('demo')!)).toBe('one a1');
  const release = (v: string) => path.join(bed!.hostDir('a'), 'releases', 'demo', v);
  const record = JSON.parse(await readFile(path.join(release('1.0.0'), '.hotdeploy', 'install.json'), 'utf8')) as { key: string };
  expect(record.key).toBe(first.release.install.key);
  const files = JSON.parse(await readFile(path.join(release('1.0.0'), '.hotdeploy', 'files.json'), 'utf8')) as { files: Record<string, string> };
  expect(Object.keys(files.files)).toContain('node_modules/tiny-a/index.js');

  const second = await push(bed!.app, '1.0.1', app('1.0.1', 'two'));
  expect(second.deployment.status, second.deployment.reason).toBe('succeeded');
  expect(second.deployment.workers[0]).toMatchObject({ outcome: 'hot', update: { outdated: ['index.js'] } });
  const inode = async (v: string) => (await stat(path.join(release(v), 'node_modules/tiny-a/index.js'))).ino;
  expect(await inode('1.0.1')).toBe(await inode('1.0.0'));
  expect(await answerOf(a.hosted('demo')!)).toBe('two a1');
});

itWithNats('a host whose Node ABI differs fails prepare with the reason, and no host changes', async () => {
  await setUp();
  const a = await addHost('a');
  expect((await push(bed!.app, '1.0.0', app('1.0.0', 'one'))).deployment.status).toBe('succeeded');
  await addHost('b', { ...nodeTarget(), abi: '999' });
  const { deployment } = await push(bed!.app, '1.0.1', app('1.0.1', 'two'));
  expect(deployment.status).toBe('failed');
  expect(deployment.reason).toMatch(/b: prepare failed: .*demo@1\.0\.1: its node_modules were installed for Node ABI \d+ .*this host runs Node ABI 999/);
  expect(await answerOf(a.hosted('demo')!)).toBe('one a1');
});
