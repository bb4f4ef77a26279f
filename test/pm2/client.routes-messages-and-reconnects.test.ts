import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pm2Client } from '../../agent/pm2/client.js';
import type { BusPacket } from '../../agent/pm2/client.js';
import { daemonPid, pm2Home } from '../helpers/pm2.js';
import { waitFor } from '../helpers/wait.js';
import { writeTree } from '../helpers/tmp.js';

// The control layer against a real daemon: start in cluster mode with wait_ready, the message round
// trip (sendDataToProcessId → worker → bus), and a daemon killed under it.
const APP = `
const http = require('node:http');
const server = http.createServer((req, res) => res.end('pid ' + process.pid));
server.listen(Number(process.env.PORT), () => process.send('ready'));
process.on('message', (packet) => {
  if (packet && packet.topic === 'echo') process.send({ type: 'process:msg', data: { echo: packet.data, pmId: Number(process.env.pm_id) } });
});
process.on('SIGINT', () => server.close(() => process.exit(0)));
`;

let home: { home: string; cleanup: () => Promise<void> };
let client: Pm2Client;
let script: string;

beforeAll(async () => {
  home = await pm2Home();
  script = path.join(home.home, 'app', 'server.cjs');
  await writeTree(path.dirname(script), { 'server.cjs': APP });
  client = new Pm2Client({ home: home.home });
  await client.connect();
});

afterAll(async () => {
  await client?.disconnect();
  await home?.cleanup();
});

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function get(port: number): Promise<string> {
  return fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
}

describe('Pm2Client', () => {
  it('starts a cluster app in its own home and routes messages both ways', async () => {
    expect(daemonPid(home.home)).toBeTypeOf('number');
    const port = await freePort();
    await client.start({ name: 'echo', script, cwd: path.dirname(script), instances: 2, env: { PORT: String(port) }, listenTimeoutMs: 5_000, killTimeoutMs: 2_000 });
    const procs = await waitFor('two online workers', async () => {
      const list = (await client.list()).filter((p) => p.name === 'echo');
      return list.length === 2 && list.every((p) => p.status === 'online') ? list : undefined;
    });
    expect(await get(port)).toMatch(/^pid \d+$/);

    const target = procs[0]!.pmId;
    const answer = new Promise<BusPacket>((resolve) => {
      const onMessage = (packet: BusPacket): void => {
        if ((packet.data as { echo?: unknown } | undefined)?.echo === 'hello') { client.off('message', onMessage); resolve(packet); }
      };
      client.on('message', onMessage);
    });
    await client.send(target, 'echo', 'hello');
    const packet = await answer;
    expect(packet.process?.pm_id).toBe(target);
    expect((packet.data as { pmId: number }).pmId).toBe(target);
  });

  it('notices a killed daemon, fails calls clearly, and reconnects to a new one', async () => {
    const pid = daemonPid(home.home)!;
    const lost = new Promise<string>((resolve) => client.once('lost', resolve));
    process.kill(pid, 'SIGKILL');
    expect(await lost).toMatch(/PM2 daemon/);
    await expect(client.list()).rejects.toMatchObject({ code: 'HOT_ERR_PM2_DOWN' });

    await client.connect();
    const newPid = daemonPid(home.home);
    expect(newPid).toBeTypeOf('number');
    expect(newPid).not.toBe(pid);
    expect(await client.list()).toEqual([]);
  });
});
