import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handlerApp, pidsServing } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { appStatus, deployment, push, startHotdeploy } from '../helpers/hotdeploy.js';
import type { DeploymentBody, Hotdeploy } from '../helpers/hotdeploy.js';
import { daemonPid } from '../helpers/pm2.js';
import { waitFor } from '../helpers/wait.js';

// The PM2 daemon is killed in the middle of a deployment. The deployment fails
// with a clear reason, the agent reconnects (starting a daemon) and brings the app back on the
// release the service still calls current, and the next deployment works.

let hd: Hotdeploy;
let port: number;
const declining = (text: string): string => `module.hot.decline();\nmodule.exports = ${JSON.stringify(text)};\n`;

beforeAll(async () => {
  hd = await startHotdeploy();
  port = await freePort();
  const { deployment: first } = await push(hd, 'svc', '1.0.0', handlerApp({ name: 'svc', version: '1.0.0', port, messageJs: declining('one') }));
  expect(first.status, first.reason).toBe('succeeded');
});

afterAll(async () => {
  await hd?.close();
});

describe('PM2 daemon death', () => {
  it('fails the running deployment clearly, restores the app, and the next deployment works', async () => {
    const oldDaemon = daemonPid(hd.pm2Home);
    expect(oldDaemon).toBeTypeOf('number');
    // A declined change (fallback) whose entry takes 3 s to boot: the trial start is still running
    // when the daemon is killed.
    const slow = handlerApp({ name: 'svc', version: '2.0.0', port, messageJs: declining('two'), indexJs: `
const message = require('./message.js');
module.exports = async () => {
  await new Promise((resolve) => setTimeout(resolve, 3000));
  return (req, res) => res.end(JSON.stringify({ message, pid: process.pid }));
};
` });
    const queued = await push(hd, 'svc', '2.0.0', slow, '?wait=false');
    expect(queued.status).toBe(202);
    await waitFor('the deployment to run', async () => ((await deployment(hd, queued.deployment.id)).status === 'running' ? true : undefined));
    process.kill(oldDaemon!, 'SIGKILL');

    const ended = await waitFor<DeploymentBody>('the deployment to end', async () => {
      const d = await deployment(hd, queued.deployment.id);
      return d.status === 'running' || d.status === 'queued' ? undefined : d;
    });
    expect(ended.status).toBe('failed');
    expect(ended.reason).toMatch(/PM2 daemon unavailable/);

    // The agent started a new daemon and brought the app back on 1.0.0.
    const back = await waitFor('the app to serve again', async () => {
      const serving = await pidsServing(port, 2, 2_000).catch(() => undefined);
      return serving?.messages.length === 1 ? serving : undefined;
    }, 30_000);
    expect(back.messages).toEqual(['one']);
    expect(daemonPid(hd.pm2Home)).not.toBe(oldDaemon);
    expect((await appStatus(hd, 'svc')).current).toBe('1.0.0');

    const next = await push(hd, 'svc', '3.0.0', handlerApp({ name: 'svc', version: '3.0.0', port, messageJs: declining('three') }));
    expect(next.deployment.status, next.deployment.reason).toBe('succeeded');
    expect(next.deployment.workers.map((w) => w.outcome)).toEqual(['reloaded', 'reloaded']);
    expect((await pidsServing(port, 2)).messages).toEqual(['three']);
  });
});
