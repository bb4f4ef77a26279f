import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { HostPlan } from '../../agent/messages.js';
import { runCli } from '../../services/cli/run.js';
import { handlerApp, pidsServing } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { makeBundle } from '../helpers/bundles.js';
import { appStatus, HOTDEPLOY_TOKEN, push, startHotdeploy, type Hotdeploy } from '../helpers/hotdeploy.js';
import { tempDir, writeTree } from '../helpers/tmp.js';
import { captureIo } from '../cli/helpers.js';

// `hotdeploy plan`: the dry run on real PM2 workers (a real daemon in a temp PM2_HOME),
// through the real service over HTTP and through the CLI in-process. After every plan the workers,
// their answers, the current release and the data directory must be exactly as before.

let hd: Hotdeploy;
let port: number;
let firstPids: number[];

/** message.js is accepted (through the entry, which the handler host accepts); limit.js declines itself. */
function app(message: string, limit: number): Record<string, string | object> {
  return {
    ...handlerApp({ name: 'web', version: '1.0.0', port, message }),
    'index.js': `
const message = require('./message.js');
const limit = require('./limit.js');
module.exports = (req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ message, limit, pid: process.pid }));
};
`,
    'limit.js': `module.hot.decline();\nmodule.exports = ${limit};\n`,
  };
}

interface PlanBody {
  app: string;
  current: string | null;
  hosts: HostPlan[];
  unplanned: { host: string; reason: string }[];
}

async function planOf(bundle: Buffer, headers: Record<string, string> = {}, name = 'web'): Promise<{ status: number; body: PlanBody & { code?: string } }> {
  const res = await fetch(`${hd.url}/v1/apps/${name}/plan`, {
    method: 'POST', body: bundle,
    headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}`, 'content-type': 'application/gzip', ...headers },
  });
  return { status: res.status, body: (await res.json()) as PlanBody & { code?: string } };
}

/** Nothing a plan may change: same pids serving the same answer, same current release, no staging left. */
async function expectNothingChanged(): Promise<void> {
  expect(await pidsServing(port, 2)).toEqual({ pids: firstPids, messages: ['one'] });
  const status = await appStatus(hd, 'web');
  expect(status.current).toBe('1.0.0');
  expect(status.workers.map((w) => w.version)).toEqual(['1.0.0', '1.0.0']);
  expect(await readdir(path.join(hd.dataDir, 'tmp'))).toEqual([]);
  expect(await readdir(path.join(hd.dataDir, 'apps', 'web', 'releases'))).toEqual(['1.0.0']);
  expect(await readdir(path.join(hd.dataDir, 'deployments'))).toHaveLength(1);
}

beforeAll(async () => {
  hd = await startHotdeploy();
  port = await freePort();
  const { deployment } = await push(hd, 'web', '1.0.0', app('one', 1));
  expect(deployment.status, deployment.reason).toBe('succeeded');
  firstPids = (await pidsServing(port, 2)).pids;
});

afterAll(async () => {
  await hd?.close();
});

describe('plan: a dry run in every worker, nothing deployed', () => {
  it('a leaf change that is accepted: every worker hot, the changed module listed', async () => {
    const { status, body } = await planOf(await makeBundle(app('two', 1)));
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ app: 'web', current: '1.0.0', unplanned: [] });
    expect(body.hosts).toHaveLength(1);
    const [host] = body.hosts;
    expect(host?.path).toBe('hot');
    expect(host?.workers.map((w) => [w.hot, w.update?.outcome, w.update?.outdated])).toEqual([[true, 'hot', ['message.js']], [true, 'hot', ['message.js']]]);
    expect(host?.workers.map((w) => w.pid).sort()).toEqual(firstPids);
    await expectNothingChanged();
  });

  it('a change reaching a decline: reload, with the chain', async () => {
    const { status, body } = await planOf(await makeBundle(app('one', 2)));
    expect(status, JSON.stringify(body)).toBe(200);
    const [host] = body.hosts;
    expect(host?.path).toBe('reload');
    expect(host?.reason).toContain('limit.js');
    expect(host?.workers.map((w) => [w.hot, w.update?.outcome, w.update?.chain])).toEqual([[false, 'declined', ['limit.js']], [false, 'declined', ['limit.js']]]);
    await expectNothingChanged();
  });

  it('an app no worker runs yet: the host would start it', async () => {
    const { status, body } = await planOf(await makeBundle(handlerApp({ name: 'fresh', version: '1.0.0', port: await freePort() })), {}, 'fresh');
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ app: 'fresh', current: null, unplanned: [] });
    expect(body.hosts.map((h) => [h.path, h.workers])).toEqual([['start', []]]);
    await expectNothingChanged();
    expect(await readdir(path.join(hd.dataDir, 'apps'))).toEqual(['web']);
  });

  it('a bad bundle gets the upload\'s own code, and nothing changes', async () => {
    const cases: Array<[string, Buffer, Record<string, string>]> = [
      ['not gzip', Buffer.from('not a tarball at all'), {}],
      ['no manifest', await makeBundle({ 'index.js': '' }), {}],
      ['wrong sha256', await makeBundle(app('two', 1)), { 'x-bundle-sha256': 'a'.repeat(64) }],
    ];
    for (const [name, bundle, headers] of cases) {
      const upload = await fetch(`${hd.url}/v1/apps/web/releases/9.9.9`, {
        method: 'PUT', body: bundle, headers: { authorization: `Bearer ${HOTDEPLOY_TOKEN}`, 'content-type': 'application/gzip', ...headers },
      });
      const uploaded = (await upload.json()) as { code: string };
      const { status, body } = await planOf(bundle, headers);
      expect([name, status, body.code]).toEqual([name, upload.status, uploaded.code]);
      expect(status).toBeGreaterThanOrEqual(400);
    }
    await expectNothingChanged();
    const audit = (await readFile(path.join(hd.dataDir, 'audit.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { what: string; outcome: string });
    expect(audit.filter((e) => e.what === 'plan').map((e) => e.outcome)).toEqual(['planned', 'planned', 'planned', 'rejected', 'rejected', 'rejected']);
  });

  it('the CLI plans a directory in-process: --json parses, the table names path, modules and chain, exit 0', async () => {
    const src = await tempDir('hd-plan-src-');
    onTestFinished(src.cleanup);
    const dir = src.dir;
    await writeTree(dir, app('one', 3));
    const flags = ['--server', hd.url, '--token', HOTDEPLOY_TOKEN];
    const json = captureIo();
    expect(await runCli(['plan', 'web', dir, '--json', ...flags], json.io), json.err()).toBe(0);
    const answer = JSON.parse(json.out()) as PlanBody;
    expect(answer.hosts[0]?.path).toBe('reload');
    expect(answer.hosts[0]?.workers.map((w) => w.update?.chain)).toEqual([['limit.js'], ['limit.js']]);

    await writeTree(dir, app('three', 1));
    const table = captureIo();
    expect(await runCli(['plan', 'web', dir, ...flags], table.io), table.err()).toBe(0);
    expect(table.out()).toMatch(/plan of web against 1\.0\.0: \S+ hot/);
    expect([...table.out().matchAll(/│ #\d+\s+│ (\d+)\s+│ (\S+)\s+│ (\S+)/g)].map((m) => [Number(m[1]), m[2], m[3]]).sort())
      .toEqual(firstPids.map((pid) => [pid, 'hot', 'message.js']));
    expect(table.out()).toContain('nothing was deployed');
    await expectNothingChanged();
  });
});
