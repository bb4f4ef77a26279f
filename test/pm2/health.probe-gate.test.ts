import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivationRequest } from '../../agent/messages.js';
import { handlerApp, pidsServing, release } from '../helpers/apps.js';
import { AgentBed } from '../helpers/started-agent.js';

// The health probe after a hot swap, a reload and a start, through a real PM2 agent: each worker
// runs a GET through its own handler before the deployment may report success.

let bed: AgentBed;

beforeAll(async () => {
  bed = await AgentBed.start('probed');
});

afterAll(async () => {
  await bed?.close();
});

/** An entry whose `/` answers 500 with a body naming what broke (the update re-evaluates the entry). */
const BROKEN_ROOT = `
const message = require('./message.js');
module.exports = (req, res) => {
  res.statusCode = 500;
  res.setHeader('content-type', 'text/plain');
  res.end('database unreachable: ' + message + ' ' + 'x'.repeat(400));
};
`;

function next(version: string, files: Record<string, string | object>): Promise<ActivationRequest> {
  const previous = { version: bed.last.version, releaseDir: bed.last.releaseDir };
  return release(bed.data.dir, bed.app, version, files, previous);
}

describe('the health probe', () => {
  it('swaps workers back hot when `/` answers 500 after a hot swap; the old release serves from the same pids', async () => {
    const before = await pidsServing(bed.port, 2);
    const broken = await next('v2', handlerApp({ name: bed.app, version: 'v2', port: bed.port, message: 'two', indexJs: BROKEN_ROOT }));
    const result = await bed.agent.activate(broken);
    expect(result.status, result.reason).toBe('rolled-back');
    expect(result.path).toBe('hot');
    expect(result.reason).toMatch(/^v2: worker \d+ failed the health probe: GET \/ answered 500: database unreachable: two x+; swapped back to v1$/);
    // The reason quotes the start of the body, not all of it.
    expect(result.reason!.length).toBeLessThan(260);
    expect(result.workers.map((w) => [w.outcome, w.version])).toEqual([['rolled-back', 'v1'], ['rolled-back', 'v1']]);
    expect(await pidsServing(bed.port, 2)).toEqual(before);
  });

  it('does not reload a release whose trial start fails the probe; the old release serves from the same pids', async () => {
    const before = await pidsServing(bed.port, 2);
    // A changed env takes the reload path: the trial start answers the probe before anything is reloaded.
    const broken = await next('v3', handlerApp({ name: bed.app, version: 'v3', port: bed.port, message: 'three', indexJs: BROKEN_ROOT, env: { MODE: 'x' } }));
    const result = await bed.agent.activate(broken);
    expect(result.status, result.reason).toBe('rolled-back');
    expect(result.reason).toMatch(/^v3 failed the health probe in a trial run \(GET \/ answered 500: database unreachable: three x+\); nothing was reloaded/);
    expect(await pidsServing(bed.port, 2)).toEqual(before);
  });

  it('reloads back when the reloaded workers fail the probe; the old release serves', async () => {
    const before = await pidsServing(bed.port, 2);
    // `/` answers 503 only where PM2 runs the release (PM2 sets pm_id): the trial start passes.
    const underPm2 = `
const message = require('./message.js');
module.exports = (req, res) => {
  if (process.env.pm_id !== undefined) { res.statusCode = 503; return res.end('cache cold: ' + message); }
  res.end(JSON.stringify({ message, pid: process.pid }));
};
`;
    const broken = await next('v4', handlerApp({ name: bed.app, version: 'v4', port: bed.port, message: 'four', indexJs: underPm2, env: { MODE: 'y' } }));
    const result = await bed.agent.activate(broken);
    expect(result.status, result.reason).toBe('rolled-back');
    expect(result.path).toBe('reload');
    expect(result.reason).toMatch(/^v4 did not come up after the reload: worker \d+ failed the health probe: GET \/ answered 503: cache cold: four$/);
    expect(result.workers.map((w) => w.version)).toEqual(['v1', 'v1']);
    const after = await pidsServing(bed.port, 2);
    expect(after.messages).toEqual(['one']);
    expect(after.pids.filter((pid) => before.pids.includes(pid))).toEqual([]);
  });

  it('probes the path and statuses of `hotdeploy.health`, and `"health": false` turns the probe off', async () => {
    const withHealth = (version: string, health: unknown, indexJs?: string): Record<string, string | object> => {
      const files = handlerApp({ name: bed.app, version, port: bed.port, message: version, ...(indexJs ? { indexJs } : {}) });
      const pkg = files['package.json'] as { hotdeploy: Record<string, unknown> };
      return { ...files, 'package.json': { ...pkg, hotdeploy: { ...pkg.hotdeploy, health } } };
    };
    // `/` keeps answering; `/ready` says 503 until the app is told otherwise.
    const readyGate = `
const message = require('./message.js');
module.exports = (req, res) => {
  if (req.url === '/ready') { res.statusCode = 503; return res.end('warming up'); }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ message, pid: process.pid }));
};
`;
    const v5 = await next('v5', withHealth('v5', { path: '/ready', expect: [200, 204] }, readyGate));
    const refused = await bed.agent.activate(v5);
    expect(refused.status, refused.reason).toBe('rolled-back');
    expect(refused.reason).toMatch(/GET \/ready answered 503: warming up/);
    expect((await pidsServing(bed.port, 2)).messages).toEqual(['one']);

    const v6 = await next('v6', withHealth('v6', false, BROKEN_ROOT));
    const unchecked = await bed.agent.activate(v6);
    expect(unchecked, unchecked.reason).toMatchObject({ status: 'succeeded', path: 'hot' });
    const res = await fetch(`http://127.0.0.1:${bed.port}/`, { headers: { connection: 'close' } });
    expect(res.status).toBe(500);
  });
});
