import { readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, nkeyAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { HotError } from '../errors.js';

/** How to reach and authenticate to NATS (user/password, token, or an nkey seed / creds file). */
export interface NatsSettings {
  servers: string | string[];
  user?: string;
  pass?: string;
  token?: string;
  /** A `.creds` file (JWT + nkey seed), as `nsc` writes it. */
  credsFile?: string;
  /** A file holding an nkey seed (`SU...`). */
  nkeySeedFile?: string;
  /** Shown in the server's monitoring pages. */
  name?: string;
  /** Per connection attempt (ms); default 5 000. */
  timeoutMs?: number;
}

/**
 * Connects, or rejects with HOT_ERR_NATS_UNREACHABLE naming the servers (the client's own error
 * says only "CONNECTION_REFUSED"). Once connected the client reconnects on its own, forever: an
 * agent outlives a NATS restart.
 */
export async function connectNats(settings: NatsSettings): Promise<NatsConnection> {
  const options: NodeConnectionOptions = {
    servers: settings.servers,
    timeout: settings.timeoutMs ?? 5_000,
    maxReconnectAttempts: -1,
    ...(settings.name ? { name: settings.name } : {}),
  };
  if (settings.user !== undefined) Object.assign(options, { user: settings.user, pass: settings.pass ?? '' });
  if (settings.token !== undefined) options.token = settings.token;
  if (settings.credsFile !== undefined) options.authenticator = credsAuthenticator(await readSecret(settings.credsFile));
  else if (settings.nkeySeedFile !== undefined) {
    options.authenticator = nkeyAuthenticator(new TextEncoder().encode((await readFile(settings.nkeySeedFile, 'utf8')).trim()));
  }
  try {
    return await connect(options);
  } catch (err) {
    const servers = Array.isArray(settings.servers) ? settings.servers.join(', ') : settings.servers;
    throw new HotError('HOT_ERR_NATS_UNREACHABLE', `${servers}: ${(err as Error).message}`, { cause: err });
  }
}

async function readSecret(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (err) {
    throw new HotError('HOT_ERR_NATS_SETTINGS', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}
