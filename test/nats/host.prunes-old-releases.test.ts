import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect } from 'vitest';
import { inProcessHost } from '../helpers/in-process-host.js';
import { clusterBed, itWithNats, startHost, testNames, useNatsServer, type ClusterBed, type TestHost } from '../helpers/nats.js';
import { clusterApp, push } from './fixtures.js';

let bed: ClusterBed | undefined;
let host: TestHost | undefined;

useNatsServer();

afterEach(async () => {
  await host?.stop();
  await host?.agent.close();
  await bed?.close();
});

itWithNats('a host keeps its newest releases and the one it serves, and removes the rest', async () => {
  bed = await clusterBed(testNames());
  const agent = inProcessHost('a');
  host = await startHost(bed.names, agent, bed.hostDir('a'), 300, 2);
  for (const version of ['1.0.0', '2.0.0', '3.0.0', '4.0.0']) {
    expect((await push(bed.app, version, clusterApp(version))).deployment.status).toBe('succeeded');
  }
  expect((await readdir(path.join(bed.hostDir('a'), 'releases', 'demo'))).sort()).toEqual(['3.0.0', '4.0.0']);
  expect(agent.served('demo')).toBe('4.0.0');
});

itWithNats('a host never removes a release its workers still run code from (an entry that accepts its dependency)', async () => {
  bed = await clusterBed(testNames());
  const agent = inProcessHost('a');
  host = await startHost(bed.names, agent, bed.hostDir('a'), 300, 2);
  const app = (version: string): Record<string, string | object> => ({
    'package.json': { name: 'demo', version: '1.0.0', main: 'index.js', hotdeploy: { port: 0 } },
    // The entry stays loaded from its first release: only message.js is evaluated again.
    'index.js': `const fs = require('node:fs');
let message = require('./message.js');
module.hot.accept('./message.js', () => { message = require('./message.js'); });
module.exports = (req, res) => res.end(message + fs.readFileSync(__dirname + '/page.html', 'utf8'));
`,
    'page.html': '<p>page</p>',
    'message.js': `module.exports = ${JSON.stringify(version)};\n`,
  });
  for (const version of ['1.0.0', '2.0.0', '3.0.0', '4.0.0']) {
    const { deployment } = await push(bed.app, version, app(version));
    expect(deployment.status, deployment.reason).toBe('succeeded');
  }
  expect((await readdir(path.join(bed.hostDir('a'), 'releases', 'demo'))).sort()).toEqual(['1.0.0', '3.0.0', '4.0.0']);
  const hosted = agent.hosted('demo');
  expect(hosted?.releasesInUse().map((dir) => path.basename(dir))).toEqual(['1.0.0', '4.0.0']);
});
