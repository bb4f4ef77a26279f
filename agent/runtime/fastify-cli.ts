import { HotError } from '../errors.js';
import type { FastifyStart } from '../messages.js';
import type { AppHandler } from './handler.js';

/**
 * A fastify-cli app (`module.exports = async function (fastify, opts)` plus `module.exports.options`)
 * hosted the way `fastify start` hosts it (fastify-cli's start.js): fastify from the app's own
 * node_modules, a server made with the options below, the plugin registered with its options, then
 * `ready()`. The worker owns the listening server, so requests are routed into the instance.
 *
 * Honoured, from the start script, else from `FASTIFY_*` variables, else fastify-cli's default:
 * `-l/--log-level` (FASTIFY_LOG_LEVEL, `fatal`), `-p/--port` (FASTIFY_PORT, then PORT, 3000; read
 * from the manifest, since the agent sets the worker's PORT), `-o/--options` (FASTIFY_OPTIONS: the
 * `options` export becomes server options and plugin options), `-x/--prefix` (FASTIFY_PREFIX),
 * `-T/--plugin-timeout` (FASTIFY_PLUGIN_TIMEOUT, 10000), `--body-limit` (FASTIFY_BODY_LIMIT),
 * `-P/--pretty-logs` (FASTIFY_PRETTY_LOGS: pino-pretty, from the app), `--trust-proxy-enabled`,
 * `--trust-proxy-ips`, `--trust-proxy-hop` (FASTIFY_TRUST_PROXY_*), and plugin options after `--`.
 * Not applied: the address, socket and watch options, the debugger, `--require`/`--import`,
 * `--logging-module`, `--config`, `--close-grace-delay`, and the `.env` file fastify-cli loads.
 */

type Kind = 'string' | 'boolean';

/** fastify-cli's options (its args.js): long name → [type, short]. */
const OPTIONS: Record<string, [Kind, string?]> = {
  port: ['string', 'p'], 'inspect-port': ['string'], 'body-limit': ['string'], 'plugin-timeout': ['string', 'T'],
  'close-grace-delay': ['string', 'g'], 'trust-proxy-hop': ['string'], 'log-level': ['string', 'l'], address: ['string', 'a'],
  socket: ['string', 's'], prefix: ['string', 'x'], 'ignore-watch': ['string'], 'logging-module': ['string', 'L'],
  'debug-host': ['string'], lang: ['string'], require: ['string', 'r'], import: ['string', 'i'], config: ['string', 'c'],
  method: ['string'], 'trust-proxy-ips': ['string'], 'follow-watch': ['string'], 'pretty-logs': ['boolean', 'P'],
  options: ['boolean', 'o'], watch: ['boolean', 'w'], 'verbose-watch': ['boolean', 'V'], debug: ['boolean', 'd'],
  standardlint: ['boolean'], 'common-prefix': ['boolean'], 'include-hooks': ['boolean'], 'trust-proxy-enabled': ['boolean'],
  help: ['boolean', 'h'], 'debug-port': ['string', 'I'],
};
const BY_SHORT = new Map(Object.entries(OPTIONS).filter(([, [, s]]) => s).map(([long, [, s]]) => [s!, long]));
const HONOURED = new Set(['port', 'log-level', 'options', 'prefix', 'plugin-timeout', 'body-limit', 'pretty-logs',
  'trust-proxy-enabled', 'trust-proxy-ips', 'trust-proxy-hop']);

/**
 * The `fastify start` command of an npm script (`fastify start -l info app.js`, also after `&&`,
 * behind `VAR=value` assignments or `npx`), or undefined when the script runs something else.
 */
export function parseFastifyStart(script: string): FastifyStart | undefined {
  for (const command of script.split(/&&|\|\||;/)) {
    const words = shellWords(command);
    let i = 0;
    while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]!)) i++;
    if (words[i] === 'npx' || words[i] === 'exec') i++;
    if (!/(?:^|\/)fastify$/.test(words[i] ?? '') || words[i + 1] !== 'start') continue;
    return parseStartArgs(words.slice(i + 2));
  }
  return undefined;
}

function parseStartArgs(args: string[]): FastifyStart | undefined {
  const values = new Map<string, string | boolean>();
  const positionals: string[] = [];
  const pluginOptions: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      parsePluginOptions(args.slice(i + 1), pluginOptions);
      break;
    }
    const long = /^--([^=]+)(?:=(.*))?$/.exec(arg);
    const short = long ? undefined : /^-([A-Za-z]+)$/.exec(arg);
    if (long) {
      const name = kebab(long[1]!);
      const kind = OPTIONS[name]?.[0] ?? 'string';
      if (kind === 'boolean') values.set(name, long[2] === undefined ? true : long[2] !== 'false');
      else values.set(name, long[2] ?? args[++i] ?? '');
    } else if (short) {
      // A group of flags (`-wP`); the last may take a value (`-l info`).
      for (const [j, letter] of [...short[1]!].entries()) {
        const name = BY_SHORT.get(letter) ?? letter;
        if (OPTIONS[name]?.[0] === 'string' && j === short[1]!.length - 1) values.set(name, args[++i] ?? '');
        else values.set(name, true);
      }
    } else {
      positionals.push(arg);
    }
  }
  const file = positionals[0];
  if (file === undefined) return undefined;
  const start: FastifyStart = { file: file.replace(/^\.\//, ''), pluginOptions, ignored: [] };
  for (const [name, value] of values) {
    if (!HONOURED.has(name)) start.ignored.push(`--${name}`);
    else applyOption(start, name, value);
  }
  return start;
}

function applyOption(start: FastifyStart, name: string, value: string | boolean): void {
  const text = String(value);
  const number = Number(text);
  switch (name) {
    case 'port': if (Number.isInteger(number)) start.port = number; break;
    case 'log-level': start.logLevel = text; break;
    case 'options': start.options = value === true || text === 'true'; break;
    case 'prefix': start.prefix = text; break;
    case 'plugin-timeout': if (Number.isFinite(number)) start.pluginTimeout = number; break;
    case 'body-limit': if (Number.isFinite(number)) start.bodyLimit = number; break;
    case 'pretty-logs': start.prettyLogs = value === true || text === 'true'; break;
    default: start.trustProxy = trustProxyOf(name, value);
  }
}

function trustProxyOf(name: string, value: string | boolean): boolean | string | number {
  if (name === 'trust-proxy-enabled') return value === true || value === 'true';
  if (name === 'trust-proxy-hop') return Number(value);
  return String(value);
}

function parsePluginOptions(args: string[], into: Record<string, string | boolean>): void {
  for (let i = 0; i < args.length; i++) {
    const m = /^--?([^=]+)(?:=(.*))?$/.exec(args[i]!);
    if (!m) continue;
    const next = args[i + 1];
    if (m[2] !== undefined) into[m[1]!] = m[2];
    else if (next !== undefined && !next.startsWith('-')) into[m[1]!] = args[++i]!;
    else into[m[1]!] = true;
  }
}

function kebab(name: string): string {
  return name.replace(/([A-Z])/g, '-$1').toLowerCase();
}

/** Splits a command as a POSIX shell would for plain words and quotes (no expansion). */
function shellWords(command: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(command); m; m = re.exec(command)) words.push(m[1] ?? m[2] ?? m[3]!);
  return words;
}

/** The start options once the worker's `FASTIFY_*` variables filled what the script left out. */
export function withEnv(start: FastifyStart, env: NodeJS.ProcessEnv): FastifyStart {
  const merged: FastifyStart = { ...start };
  const fromEnv = (name: string): string | undefined => env[`FASTIFY_${name.toUpperCase().replace(/-/g, '_')}`];
  for (const name of HONOURED) {
    const value = fromEnv(name);
    if (value === undefined || name === 'port') continue;
    const key = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof FastifyStart;
    const given = name.startsWith('trust-proxy') ? merged.trustProxy : merged[key];
    if (given === undefined) applyOption(merged, name, value);
  }
  return merged;
}

interface FastifyInstance {
  register(plugin: unknown, options: unknown): PromiseLike<unknown>;
  ready(): PromiseLike<unknown>;
  routing(req: unknown, res: unknown): void;
  close(): PromiseLike<unknown>;
}

/**
 * Hosts the plugin `exported` (the entry's exports) as `fastify start` would. `requireFromApp`
 * requires a package as the entry does, so fastify comes from the app's own node_modules.
 */
export async function hostFastifyPlugin(exported: unknown, given: FastifyStart, requireFromApp: (id: string) => unknown, env: NodeJS.ProcessEnv): Promise<AppHandler> {
  const start = withEnv(given, env);
  const file = exported as { default?: unknown; options?: unknown } | null;
  const plugin = file?.default ?? file;
  if (typeof plugin !== 'function') {
    throw new HotError('HOT_ERR_HANDLER', `${start.file} exports ${typeof plugin}; a fastify-cli app exports a plugin function (fastify, opts)`);
  }
  const fileOptions = start.options && isPlainObject(file?.options) ? file.options : {};
  let options: Record<string, unknown> = {
    logger: { level: start.logLevel ?? 'fatal', ...(start.prettyLogs ? { transport: { target: 'pino-pretty' } } : {}) },
    pluginTimeout: start.pluginTimeout ?? 10_000,
    ...(start.bodyLimit ? { bodyLimit: start.bodyLimit } : {}),
  };
  options = deepMerge(options, fileOptions);
  if (start.trustProxy !== undefined && start.trustProxy !== false) options.trustProxy = start.trustProxy;
  const pluginConfig: Record<string, unknown> = { ...fileOptions, ...start.pluginOptions, ...(start.prefix ? { prefix: start.prefix } : {}) };

  const Fastify = fromApp(requireFromApp, 'fastify') as (options: unknown) => FastifyInstance;
  const instance = Fastify(options);
  try {
    const appPlugin = pluginConfig.skipOverride ? (fromApp(requireFromApp, 'fastify-plugin') as (fn: unknown) => unknown)(plugin) : plugin;
    await instance.register(appPlugin, pluginConfig);
    await instance.ready();
  } catch (err) {
    await Promise.resolve(instance.close()).catch(() => undefined);
    throw err;
  }
  return { handle: (req, res) => instance.routing(req, res), close: async () => { await instance.close(); } };
}

function fromApp(requireFromApp: (id: string) => unknown, id: string): unknown {
  try {
    return requireFromApp(id);
  } catch (err) {
    throw new HotError('HOT_ERR_HANDLER', `a fastify-cli app needs ${id} in its own node_modules (fastify start resolves it from the app)`, { cause: err });
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Plain objects merged key by key, `over` winning; anything else from `over` as it is. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prior = out[key];
    out[key] = isPlainObject(prior) && isPlainObject(value) ? deepMerge(prior, value) : value;
  }
  return out;
}
