import type { ArgsDef } from 'citty';
import type { NatsSettings } from '../../agent/nats/connect.js';
import { isHotError } from '../../agent/errors.js';
import { CliError } from './errors.js';

/** The NATS flags `serve` and `agent` share: where, which prefix, and the credentials. */
export const natsArgs = {
  nats: { type: 'string', description: 'NATS server URL(s), comma-separated (env HOTDEPLOY_NATS)' },
  'nats-prefix': { type: 'string', description: 'subject, stream and bucket prefix (default hotdeploy)' },
  'nats-user': { type: 'string', description: 'NATS user (with --nats-pass; env HOTDEPLOY_NATS_USER)' },
  'nats-pass': { type: 'string', description: 'NATS password (env HOTDEPLOY_NATS_PASS)' },
  'nats-token': { type: 'string', description: 'NATS token (env HOTDEPLOY_NATS_TOKEN)' },
  'nats-creds': { type: 'string', description: 'NATS .creds file (JWT + nkey)' },
  'nats-nkey': { type: 'string', description: 'file holding an NATS nkey seed' },
} as const satisfies ArgsDef;

type NatsFlags = { [K in keyof typeof natsArgs]?: string | undefined };

/** Settings from the flags and env, or undefined without `--nats` (single-machine default). */
export function natsSettings(flags: NatsFlags, env: NodeJS.ProcessEnv): { settings: NatsSettings; prefix?: string } | undefined {
  const url = flags.nats || env.HOTDEPLOY_NATS;
  if (!url) return undefined;
  const user = flags['nats-user'] || env.HOTDEPLOY_NATS_USER;
  const pass = flags['nats-pass'] || env.HOTDEPLOY_NATS_PASS;
  const token = flags['nats-token'] || env.HOTDEPLOY_NATS_TOKEN;
  const settings: NatsSettings = {
    servers: url.split(',').map((s) => s.trim()).filter(Boolean),
    ...(user ? { user, pass: pass ?? '' } : {}),
    ...(token ? { token } : {}),
    ...(flags['nats-creds'] ? { credsFile: flags['nats-creds'] } : {}),
    ...(flags['nats-nkey'] ? { nkeySeedFile: flags['nats-nkey'] } : {}),
  };
  return { settings, ...(flags['nats-prefix'] ? { prefix: flags['nats-prefix'] } : {}) };
}

/** NATS faults as CLI errors: unreachable → exit code "unreachable", bad settings → usage. */
export function asCliError(err: unknown): unknown {
  if (isHotError(err, 'HOT_ERR_NATS_UNREACHABLE')) return new CliError('CLI_ERR_UNREACHABLE', err.message, { cause: err });
  if (isHotError(err, 'HOT_ERR_NATS_SETTINGS') || isHotError(err, 'HOT_ERR_HOST_RUNNING') || isHotError(err, 'HOT_ERR_HOST_SETTINGS')) return new CliError('CLI_ERR_USAGE', err.message, { cause: err });
  return err;
}
