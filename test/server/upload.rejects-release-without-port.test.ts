import { afterEach, expect, it } from 'vitest';
import { makeBundle } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

const entry = { 'index.js': 'module.exports = (req, res) => res.end("demo@2.0.0");\n' };

it.each<[string, object]>([
  ['no hotdeploy settings (an express-generator app)', { name: 'demo', version: '2.0.0' }],
  ['a PORT in hotdeploy.env that is not a port', { name: 'demo', version: '2.0.0', hotdeploy: { env: { PORT: 'http' } } }],
])('refuses a handler-mode release with %s (422 DEPLOY_ERR_NO_PORT), before it becomes visible', async (_name, pkg) => {
  let before;
  ({ server, before } = await serverWithRelease());
  const res = await upload(server.app, 'demo', '2.0.0', await makeBundle({ 'package.json': pkg, ...entry }));
  await expectRejected(server, before, res, 422, 'DEPLOY_ERR_NO_PORT');
  expect(res.json().message).toMatch(/hotdeploy.*port.*PORT.*process/);
});

it.each<[string, object]>([
  ['hotdeploy.port', { hotdeploy: { port: 3000 } }],
  ['PORT in hotdeploy.env', { hotdeploy: { env: { PORT: '3000' } } }],
  ['process mode (the app listens itself)', { hotdeploy: { mode: 'process' } }],
])('accepts a release whose port comes from %s', async (_name, settings) => {
  ({ server } = await serverWithRelease());
  const res = await upload(server.app, 'demo', '2.0.0', await makeBundle({ 'package.json': { name: 'demo', version: '2.0.0', ...settings }, ...entry }));
  expect(res.statusCode, res.body).toBe(201);
});

it('accepts a portless handler-mode release when hosts behind NATS may give it their own PORT', async () => {
  const cluster = {
    host: 'nats', hosts: async () => [], workers: async () => [], close: async () => undefined,
    activate: async () => ({ status: 'succeeded' as const, path: 'none' as const, workers: [] }),
  };
  ({ server } = await serverWithRelease({ agents: [cluster] }));
  const res = await upload(server.app, 'demo', '2.0.0', await makeBundle({ 'package.json': { name: 'demo', version: '2.0.0' }, ...entry }));
  expect(res.statusCode, res.body).toBe(201);
});
