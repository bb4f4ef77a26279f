import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { afterEach, expect, it } from 'vitest';
import { connectNats, type NatsSettings } from '../../agent/nats/connect.js';
import { natsNames } from '../../agent/nats/protocol.js';
import { openResources } from '../../agent/nats/resources.js';
import { freePort } from '../helpers/apps.js';
import { tempDir } from '../helpers/tmp.js';

// Issue 7: NATS credentials as options. The shared server on 4222 has no auth, so each case runs a
// private nats-server (the same binary, with JetStream) that requires the credential under test.
const binary = spawnSync('nats-server', ['--version']).status === 0;

let server: { child: ChildProcess; cleanup: () => Promise<void> } | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

async function privateServer(args: string[], config?: string): Promise<string> {
  const { dir, cleanup } = await tempDir('hd-nats-auth-');
  const port = await freePort();
  const extra = config === undefined ? [] : ['-c', path.join(dir, 'auth.conf')];
  if (config !== undefined) await writeFile(path.join(dir, 'auth.conf'), config);
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir, ...extra, ...args], { stdio: 'ignore' });
  server = {
    child,
    cleanup: async () => {
      if (child.exitCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
      await cleanup();
    },
  };
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (Date.now() > deadline) throw new Error('private nats-server did not listen within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return `nats://127.0.0.1:${port}`;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

async function expectWorks(settings: NatsSettings): Promise<void> {
  const nc = await connectNats(settings);
  try {
    // JetStream with the credential: the stream and buckets the transport needs.
    const resources = await openResources(nc, natsNames('hdauth'));
    await resources.kv.put('probe', new TextEncoder().encode('ok'));
    expect((await resources.kv.get('probe'))?.string()).toBe('ok');
  } finally {
    await nc.close();
  }
}

async function expectRefused(settings: NatsSettings): Promise<void> {
  await expect(connectNats({ ...settings, timeoutMs: 2_000 })).rejects.toMatchObject({
    code: 'HOT_ERR_NATS_UNREACHABLE', message: expect.stringMatching(/Authorization Violation|authorization/i),
  });
}

it.skipIf(!binary)('user and password', async () => {
  const url = await privateServer(['--user', 'deployer', '--pass', 's3cret-pass']);
  await expectRefused({ servers: url });
  await expectRefused({ servers: url, user: 'deployer', pass: 'wrong' });
  await expectWorks({ servers: url, user: 'deployer', pass: 's3cret-pass' });
});

it.skipIf(!binary)('token', async () => {
  const url = await privateServer(['--auth', 'tok-0123456789']);
  await expectRefused({ servers: url, token: 'other' });
  await expectWorks({ servers: url, token: 'tok-0123456789' });
});

it.skipIf(!binary)('nkey seed file', async () => {
  const user = nkeys.createUser();
  const url = await privateServer([], `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }\n`);
  const { dir, cleanup } = await tempDir('hd-nkey-');
  try {
    const seedFile = path.join(dir, 'user.nk');
    await writeFile(seedFile, new TextDecoder().decode(user.getSeed()) + '\n', { mode: 0o600 });
    const stranger = path.join(dir, 'other.nk');
    await writeFile(stranger, new TextDecoder().decode(nkeys.createUser().getSeed()));
    await expectRefused({ servers: url, nkeySeedFile: stranger });
    await expectWorks({ servers: url, nkeySeedFile: seedFile });
  } finally {
    await cleanup();
  }
});

it('a credentials file that cannot be read is a settings error, before any connection', async () => {
  await expect(connectNats({ servers: 'nats://127.0.0.1:4222', credsFile: '/nonexistent/user.creds' }))
    .rejects.toMatchObject({ code: 'HOT_ERR_NATS_SETTINGS' });
});
