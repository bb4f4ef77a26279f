import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import type { RunningServer, ServerOptions, TokenConfig } from '../../server/index.js';
import { Client } from '../client.js';
import { defineCliCommand } from '../command.js';
import { CliError, describeError, ServerError } from '../errors.js';
import { asCliError, natsArgs, natsSettings } from '../nats-args.js';
import { type LogFormat, logFormat, prettyLogStream } from '../log-lines.js';
import { type Io, writeLine } from '../output.js';
import { packageName } from '../pack.js';
import { pm2Args, pm2Settings, type Pm2Settings } from '../pm2-args.js';
import { readTokensFile, type TokensFile } from '../tokens-file.js';
import { push } from './push.js';

export interface ServeOptions {
  dataDir: string;
  port: number;
  host: string;
  localAgent: boolean;
  keep?: number | undefined;
  /** An app directory to push once listening, unless that app already has a current release. */
  example?: string | undefined;
  /** Used for `--example` when this start did not create the admin token (it is shown only once). */
  token?: string | undefined;
  /** Hosts over NATS JetStream; without it nothing changes. */
  nats?: ServerOptions['nats'];
  /** A JSON file of scoped tokens (`tokens-file.ts`); it replaces the admin token of the data directory. */
  tokensFile?: string | undefined;
  /** PEM files: serve the API and the dashboard over HTTPS. */
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** The local agent's PM2 home and the variables passed on to apps (`pm2-args.ts`). */
  pm2?: Pm2Settings;
  /** `pretty`: one readable line per log event on `io.out`; `json` (default): pino's JSON lines on stdout. */
  logFormat?: LogFormat;
  /** npm's settings for installing apps' dependencies (registry, tokens, proxy); read at start to check it. */
  npmrc?: string | undefined;
}

/** Starts the deploy service (and the local PM2 agent) and prints where it listens. */
export async function serve(options: ServeOptions, io: Io): Promise<RunningServer> {
  // Loaded here, not at the top: the service (fastify, the PM2 agent) is not needed by the client commands.
  const { startServer } = await import('../../server/index.js');
  const tokens = options.tokensFile ? await readTokensFile(options.tokensFile) : undefined;
  const tls = await readTls(options.tlsCert, options.tlsKey);
  if (options.npmrc) await checkNpmrc(options.npmrc, io);
  const running = await startServer({
    dataDir: options.dataDir, port: options.port, host: options.host, localAgent: options.localAgent,
    ...(options.keep === undefined ? {} : { keep: options.keep }),
    ...(options.nats ? { nats: options.nats } : {}),
    ...(tokens ? { tokens: tokens.tokens } : {}),
    ...(tls ? { tls } : {}),
    ...options.pm2,
    ...(options.npmrc ? { npmrc: options.npmrc } : {}),
    ...(options.logFormat === 'pretty' ? { logger: { level: 'info', stream: prettyLogStream(io.out) } } : {}),
  }).catch((err: unknown) => { throw asCliError(err); });
  writeLine(io.out, `hotdeploy serving on ${running.url} (data in ${path.resolve(options.dataDir)})`);
  if (tokens) printTokens(io, options.tokensFile as string, tokens);
  if (running.adminToken) {
    writeLine(io.out, `admin token (shown this once; only its hash is stored): ${running.adminToken}`);
    writeLine(io.out, `  export HOTDEPLOY_SERVER=${running.url} HOTDEPLOY_TOKEN=${running.adminToken}`);
  }
  if (options.example) {
    await pushExample(running, { dir: options.example, token: running.adminToken ?? options.token, served: options.localAgent }, io);
  }
  return running;
}

/**
 * `npm start` / the README quick start: push the example app the first time only. A failure is
 * reported and the server keeps serving, since the service itself is fine.
 */
async function pushExample(running: RunningServer, example: { dir: string; token: string | undefined; served: boolean },
  io: Io): Promise<void> {
  const { dir, token } = example;
  try {
    const app = await packageName(dir);
    if (!token) {
      writeLine(io.out, `example ${app}: not checked (no token; set HOTDEPLOY_TOKEN to the admin token to push ${dir})`);
      return;
    }
    const client = new Client(running.url, token);
    if (!(await hasCurrentRelease(client, app))) {
      writeLine(io.out, `pushing the example app ${app} from ${dir}`);
      await push(client, { source: dir, app }, io);
    }
    const port = await examplePort(dir);
    if (!example.served) writeLine(io.out, `example ${app} is current (--no-local-agent: no worker serves it here)`);
    else writeLine(io.out, `example ${app} is deployed${port ? `: curl http://127.0.0.1:${port}/` : ''}`);
  } catch (err) {
    writeLine(io.err, `example not pushed: ${describeError(err).line}`);
  }
}

/** Both files or neither; each read and the pair checked (a key of another certificate) before anything starts. */
async function readTls(certFile: string | undefined, keyFile: string | undefined): Promise<{ cert: Buffer; key: Buffer } | undefined> {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) throw new CliError('CLI_ERR_USAGE', '--tls-cert and --tls-key go together');
  const read = (file: string) => readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new CliError('CLI_ERR_TLS', `${file}: ${err.code ?? err.message}`);
  });
  const [cert, key] = [await read(certFile), await read(keyFile)];
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new CliError('CLI_ERR_TLS', `${certFile}, ${keyFile}: ${(err as Error).message}`);
  }
  return { cert, key };
}

/** Names and scopes only, never a secret: what an operator checks after editing the file. */
function printTokens(io: Io, file: string, { tokens, readableByOthers }: TokensFile): void {
  const scope = (t: TokenConfig) => `${t.name} (apps ${t.apps?.join(',') ?? '*'}; ${t.actions?.join(',') ?? 'every action'})`;
  writeLine(io.out, `tokens from ${file}: ${tokens.map(scope).join(', ')}`);
  if (readableByOthers) writeLine(io.err, `warning: ${file} holds plain tokens and other users can read it (chmod 600, or store "sha256" instead)`);
}

/** `--npmrc FILE` must be readable now, not at the first install; it may hold registry tokens. */
async function checkNpmrc(file: string, io: Io): Promise<void> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new CliError('CLI_ERR_USAGE', `--npmrc ${file} cannot be read (${err.code ?? err.message})`);
  });
  if (!info.isFile()) throw new CliError('CLI_ERR_USAGE', `--npmrc ${file} is not a file`);
  if ((info.mode & 0o077) !== 0) writeLine(io.err, `warning: ${file} can hold registry tokens and other users can read it (chmod 600)`);
}

async function hasCurrentRelease(client: Client, app: string): Promise<boolean> {
  try {
    const { body } = await client.request<{ current: string | null }>('GET', `/v1/apps/${encodeURIComponent(app)}`);
    return body.current !== null;
  } catch (err) {
    if (err instanceof ServerError && err.statusCode === 404) return false;
    throw err;
  }
}

async function examplePort(dir: string): Promise<number | undefined> {
  const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { hotdeploy?: { port?: unknown } };
  return typeof pkg.hotdeploy?.port === 'number' ? pkg.hotdeploy.port : undefined;
}

function integer(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError('CLI_ERR_USAGE', `${flag} must be an integer from ${min} to ${max}`);
  return n;
}

type ClusterFlags = Parameters<typeof natsSettings>[0] & { strategy?: string | undefined; 'prepare-timeout'?: string | undefined; 'apply-timeout'?: string | undefined };

/** The `--nats` flags as the service's cluster options: strategy and the phases' deadlines. */
export function clusterOptions(args: ClusterFlags, env: NodeJS.ProcessEnv): ServerOptions['nats'] {
  const nats = natsSettings(args, env);
  if (args.strategy !== undefined && args.strategy !== 'auto' && args.strategy !== 'reload-all') {
    throw new CliError('CLI_ERR_USAGE', '--strategy must be auto or reload-all');
  }
  const prepareTimeoutMs = integer(args['prepare-timeout'], '--prepare-timeout', 100, 3_600_000);
  const applyTimeoutMs = integer(args['apply-timeout'], '--apply-timeout', 100, 3_600_000);
  if (!nats) return undefined;
  return {
    nats: nats.settings, ...(nats.prefix ? { prefix: nats.prefix } : {}), ...(args.strategy ? { strategy: args.strategy } : {}),
    ...(prepareTimeoutMs ? { prepareTimeoutMs } : {}), ...(applyTimeoutMs ? { applyTimeoutMs } : {}),
  };
}

export const serveCommand = defineCliCommand({
  meta: { name: 'serve', description: 'run the deploy service and the local PM2 agent' },
  args: {
    'data-dir': { type: 'string', description: 'data directory (env HOTDEPLOY_DATA_DIR, default ./.hotdeploy)' },
    port: { type: 'string', description: 'port, 0 for any free one (env HOTDEPLOY_PORT, default 7070)' },
    host: { type: 'string', description: 'address to listen on (env HOTDEPLOY_HOST, default 127.0.0.1)' },
    'local-agent': { type: 'boolean', default: true, description: 'run the PM2 agent in this process', negativeDescription: 'deploy service only' },
    keep: { type: 'string', description: 'releases kept per app (env HOTDEPLOY_KEEP, default 10)' },
    example: { type: 'string', description: 'push this app directory once listening, if that app has no release yet' },
    token: { type: 'string', description: 'token for --example when the admin token already exists (env HOTDEPLOY_TOKEN)' },
    tokens: { type: 'string', description: 'JSON file of scoped tokens [{ name, token|sha256, apps?, actions? }] (env HOTDEPLOY_TOKENS_FILE); replaces the admin token' },
    ...pm2Args,
    ...natsArgs,
    strategy: { type: 'string', description: 'with --nats: auto (hot where every worker can) or reload-all; a push may choose its own' },
    'prepare-timeout': { type: 'string', description: 'with --nats: ms every host has to pull, unpack and dry-run a release (default 60000)' },
    'apply-timeout': { type: 'string', description: 'with --nats: ms every host has to apply it; a host silent past it is reported lagging (default 120000)' },
    'tls-cert': { type: 'string', description: 'PEM certificate (chain): serve the API and the dashboard over HTTPS (env HOTDEPLOY_TLS_CERT)' },
    'tls-key': { type: 'string', description: 'PEM private key of --tls-cert (env HOTDEPLOY_TLS_KEY)' },
    npmrc: { type: 'string', description: 'npm settings for installing apps\' dependencies: registry, scoped registries and tokens, proxy (env HOTDEPLOY_NPMRC)' },
    'log-format': { type: 'string', description: 'json or pretty (env HOTDEPLOY_LOG_FORMAT; default pretty on a terminal, else json)' },
  },
  run: async (args, ctx) => {
    const { env } = ctx;
    await serve({
      dataDir: args['data-dir'] || env.HOTDEPLOY_DATA_DIR || '.hotdeploy',
      port: integer(args.port ?? env.HOTDEPLOY_PORT, '--port', 0, 65535) ?? 7070,
      host: args.host || env.HOTDEPLOY_HOST || '127.0.0.1',
      localAgent: args['local-agent'],
      keep: integer(args.keep ?? env.HOTDEPLOY_KEEP, '--keep', 1, 10_000),
      example: args.example,
      token: args.token || env.HOTDEPLOY_TOKEN || undefined,
      nats: clusterOptions(args, env),
      tokensFile: args.tokens || env.HOTDEPLOY_TOKENS_FILE || undefined,
      tlsCert: args['tls-cert'] || env.HOTDEPLOY_TLS_CERT || undefined,
      tlsKey: args['tls-key'] || env.HOTDEPLOY_TLS_KEY || undefined,
      pm2: pm2Settings(args, env),
      npmrc: args.npmrc || env.HOTDEPLOY_NPMRC || undefined,
      logFormat: logFormat(args['log-format'] ?? env.HOTDEPLOY_LOG_FORMAT, ctx.io.out.isTTY),
    }, ctx.io);
    // startServer's SIGINT / SIGTERM handlers close the server and end the process; until then, serve.
    return new Promise<never>(() => {});
  },
});
