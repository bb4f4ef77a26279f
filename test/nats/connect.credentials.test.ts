import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { afterEach, expect, it } from 'vitest';
import { connectNats, type NatsSettings } from '../../agent/nats/connect.js';
import { natsNames } from '../../agent/nats/protocol.js';
import { openResources } from '../../agent/nats/resources.js';
import { itWithNats } from '../helpers/nats.js';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';

// NATS credentials as options: each case runs a private nats-server that requires the credential
// under test.
let server: NatsServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function privateServer(args: string[], config?: string): Promise<string> {
  server = await startNatsServer({ args, ...(config === undefined ? {} : { config }) });
  return server.url;
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

itWithNats('user and password', async () => {
  const url = await privateServer(['--user', 'deployer', '--pass', 's3cret-pass']);
  await expectRefused({ servers: url });
  await expectRefused({ servers: url, user: 'deployer', pass: 'wrong' });
  await expectWorks({ servers: url, user: 'deployer', pass: 's3cret-pass' });
});

itWithNats('token', async () => {
  const url = await privateServer(['--auth', 'tok-0123456789']);
  await expectRefused({ servers: url, token: 'other' });
  await expectWorks({ servers: url, token: 'tok-0123456789' });
});

itWithNats('nkey seed file', async () => {
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
  await expect(connectNats({ servers: `nats://127.0.0.1:${await freePort()}`, credsFile: '/nonexistent/user.creds' }))
    .rejects.toMatchObject({ code: 'HOT_ERR_NATS_SETTINGS' });
});
