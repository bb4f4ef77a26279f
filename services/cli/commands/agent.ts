import os from 'node:os';
import path from 'node:path';
import { connectNats, type NatsSettings } from '../../../agent/nats/connect.js';
import { startNatsHost } from '../../../agent/nats/host-agent.js';
import { readHostSettings } from '../../../agent/nats/host-settings.js';
import { retireHost } from '../../../agent/nats/presence.js';
import { assertToken, natsNames } from '../../../agent/nats/protocol.js';
import { openResources } from '../../../agent/nats/resources.js';
import { createPm2Agent } from '../../../agent/pm2/agent.js';
import { ownVersion } from '../../../agent/common/package-files.js';
import { releaseUnpacker } from '../../server/nats/release-io.js';
import { DEFAULT_LIMITS } from '../../server/options.js';
import { defineCliCommand } from '../command.js';
import { CliError, ExitCode, type ExitCodeValue } from '../errors.js';
import { asCliError, natsArgs, natsSettings } from '../nats-args.js';
import { pm2Args, pm2Settings, type Pm2Settings } from '../pm2-args.js';
import { type Io, writeLine } from '../output.js';

export interface AgentOptions {
  nats: NatsSettings;
  prefix?: string | undefined;
  name: string;
  dataDir: string;
  heartbeatMs?: number | undefined;
  /** A host settings file (`agent/nats/host-settings.ts`), mode 0600. */
  settingsFile?: string | undefined;
  /** The PM2 home of the apps' daemon and the variables passed on to apps (`pm2-args.ts`). */
  pm2?: Pm2Settings;
}

export interface RunningAgent {
  close(): Promise<void>;
}

/**
 * A host agent on another machine: the same PM2 agent `serve` runs in-process, driven over
 * NATS. The service's guarded extraction is injected here (agent/ never imports services/). It needs
 * the NATS credentials only, never the service's HTTP tokens.
 */
export async function runAgent(options: AgentOptions, io: Io): Promise<RunningAgent> {
  const dataDir = path.resolve(options.dataDir);
  // Before anything connects: the name becomes a subject token, a KV key and a consumer name.
  try {
    assertToken(options.name, 'host name');
  } catch (err) {
    throw asCliError(err);
  }
  const settings = options.settingsFile ? await readHostSettings(options.settingsFile).catch((err: unknown) => { throw asCliError(err); }) : undefined;
  const nc = await connectNats({ name: `hotdeploy-agent-${options.name}`, ...options.nats }).catch((err: unknown) => { throw asCliError(err); });
  const pm2 = createPm2Agent({ dataDir, host: options.name, ...options.pm2 });
  const host = startNatsHost({
    resources: await openResources(nc, natsNames(options.prefix)), host: options.name, dataDir, agent: pm2,
    unpack: releaseUnpacker(DEFAULT_LIMITS), hotdeployVersion: ownVersion(),
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}), ...(settings ? { settings } : {}),
  });
  try {
    await host.ready;
  } catch (err) {
    await Promise.allSettled([pm2.close(), nc.close()]);
    throw asCliError(err);
  }
  writeLine(io.out, `hotdeploy agent ${options.name} reading commands from ${String(options.nats.servers)} (data in ${dataDir})`);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await host.close();
      await pm2.close();
      if (!nc.isClosed()) await nc.close();
    })();
    return closing;
  };
  // Like startServer: a signal finishes the command in hand, then ends the process.
  const onSignal = (): void => void close().then(() => process.exit(0), () => process.exit(1));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { close };
}

/**
 * `hotdeploy agent --retire`: the host leaves the cluster (its agent stopped first). Deployments no
 * longer list it or wait for it; starting its agent again registers it again.
 */
export async function retireAgent(options: Pick<AgentOptions, 'nats' | 'prefix' | 'name'>, io: Io): Promise<ExitCodeValue> {
  const nc = await connectNats({ name: `hotdeploy-retire-${options.name}`, ...options.nats });
  try {
    const { removed } = await retireHost(await openResources(nc, natsNames(options.prefix)), options.name);
    writeLine(io.out, removed ? `host ${options.name} retired: deployments no longer include it` : `host ${options.name} was not registered`);
    return ExitCode.ok;
  } finally {
    await nc.close();
  }
}

export const agentCommand = defineCliCommand({
  meta: { name: 'agent', description: 'run a host agent driven over NATS (other machines of a cluster)' },
  args: {
    ...natsArgs,
    name: { type: 'string', description: 'this host\'s name in the cluster (env HOTDEPLOY_AGENT_NAME, default the hostname)' },
    'data-dir': { type: 'string', description: 'data directory (env HOTDEPLOY_DATA_DIR, default ./.hotdeploy-agent)' },
    heartbeat: { type: 'string', description: 'heartbeat interval in ms (default 5000)' },
    settings: { type: 'string', description: 'this host\'s settings file, mode 0600: apps it runs, and per app port, env, instances (env HOTDEPLOY_HOST_SETTINGS)' },
    retire: { type: 'boolean', description: 'remove this host (--name) from the cluster, its agent stopped first, and exit' },
    ...pm2Args,
  },
  run: async (args, ctx) => {
    const { env } = ctx;
    const nats = natsSettings(args, env);
    if (!nats) throw new CliError('CLI_ERR_USAGE', 'agent needs --nats URL (or HOTDEPLOY_NATS)');
    const name = args.name || env.HOTDEPLOY_AGENT_NAME || os.hostname().replace(/[^A-Za-z0-9_-]/g, '-');
    if (args.retire) {
      return retireAgent({ nats: nats.settings, prefix: nats.prefix, name }, ctx.io).catch((err: unknown) => { throw asCliError(err); });
    }
    const heartbeatMs = args.heartbeat ? Number(args.heartbeat) : undefined;
    if (heartbeatMs !== undefined && (!Number.isInteger(heartbeatMs) || heartbeatMs < 100)) {
      throw new CliError('CLI_ERR_USAGE', '--heartbeat must be an integer of at least 100 (ms)');
    }
    await runAgent({
      nats: nats.settings, prefix: nats.prefix, name, heartbeatMs, pm2: pm2Settings(args, env),
      settingsFile: args.settings || env.HOTDEPLOY_HOST_SETTINGS || undefined,
      dataDir: args['data-dir'] || env.HOTDEPLOY_DATA_DIR || '.hotdeploy-agent',
    }, ctx.io).catch((err: unknown) => { throw asCliError(err); });
    // SIGINT / SIGTERM end the process; until then, serve commands.
    return new Promise<never>(() => {});
  },
});
