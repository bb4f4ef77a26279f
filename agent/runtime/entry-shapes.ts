import type { IncomingMessage, ServerResponse } from 'node:http';
import { assertNever } from '../common/guards.js';
import { HotError } from '../errors.js';
import type { EntryExport, FastifyStart } from '../messages.js';
import { hostFastifyPlugin } from './fastify-cli.js';
import type { AnyHandler, AppHandler } from './handler.js';

/** How the entry is to be hosted, and what hosting it may need from the app. */
export interface HostContext {
  /** The entry, relative to the release root (for messages). */
  entry: string;
  export: EntryExport;
  fastify?: FastifyStart | undefined;
  /** Requires a package as the entry module does (a fastify-cli app's own fastify). */
  requireFromApp: (id: string) => unknown;
  env: NodeJS.ProcessEnv;
}

/** A fastify instance, by shape: agent/ never imports fastify. */
interface FastifyLike {
  ready(): PromiseLike<unknown>;
  routing(req: IncomingMessage, res: ServerResponse): void;
  close(): PromiseLike<unknown>;
  server: unknown;
}

interface KoaLike {
  callback(): AnyHandler;
  use: unknown;
  middleware: unknown;
}

interface NestLike {
  init(): PromiseLike<unknown>;
  getHttpAdapter(): { getInstance(): unknown };
  close(): PromiseLike<unknown>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}

function isFastify(value: unknown): value is FastifyLike {
  return isObject(value) && typeof value.ready === 'function' && typeof value.routing === 'function' &&
    typeof value.close === 'function' && 'server' in value;
}

function isKoa(value: unknown): value is KoaLike {
  return isObject(value) && typeof value.callback === 'function' && typeof value.use === 'function' && Array.isArray(value.middleware);
}

function isNest(value: unknown): value is NestLike {
  return isObject(value) && typeof value.getHttpAdapter === 'function' && typeof value.init === 'function' && typeof value.close === 'function';
}

const EXPECTED: Record<EntryExport, string> = {
  auto: 'a (req, res) handler (plain Node, Express), a Koa app, a fastify instance, a NestJS app, or a factory of no parameters returning one; ' +
    'a fastify-cli plugin needs "hotdeploy": { "export": "fastify-plugin" } or a `fastify start` start script',
  handler: 'a (req, res) handler function (hotdeploy.export "handler")',
  koa: 'a Koa application (hotdeploy.export "koa")',
  fastify: 'a fastify instance (hotdeploy.export "fastify")',
  'fastify-plugin': 'a fastify plugin function (fastify, opts)',
  nest: 'a NestJS application (hotdeploy.export "nest")',
  factory: 'a function returning a handler or an app (hotdeploy.export "factory")',
};

/**
 * What the entry exports, as a request handler. With `export: auto`, by shape: a function of two or
 * more parameters is a handler (plain Node, Express's `app(req, res, next)`, `koa.callback()`); a
 * fastify instance is made ready and routed into; a Koa app is hosted through `callback()`; a NestJS
 * app through `init()` and its HTTP adapter's instance; a function of no parameters is a factory,
 * possibly async, returning one of these. A fastify-cli plugin is a function of two parameters too,
 * so it is never told by shape: the manifest says so (`hotdeploy.export`, or the start script's
 * `fastify start`). `default` and `handler` exports are looked through (TypeScript-compiled apps).
 * Anything else is HOT_ERR_HANDLER, saying what was found and what is expected.
 */
export async function resolveHandler(exported: unknown, ctx: HostContext): Promise<AppHandler> {
  const found = await hostAs(exported, ctx.export, ctx, true);
  if (found) return found;
  throw new HotError('HOT_ERR_HANDLER', `${ctx.entry} exports ${describe(exported)}; expected ${EXPECTED[ctx.export]}`);
}

async function hostAs(exported: unknown, as: EntryExport, ctx: HostContext, factoryAllowed: boolean): Promise<AppHandler | undefined> {
  switch (as) {
    case 'fastify-plugin':
      return hostFastifyPlugin(exported, ctx.fastify ?? { file: ctx.entry, pluginOptions: {}, ignored: [] }, ctx.requireFromApp, ctx.env);
    case 'handler':
      if (typeof exported === 'function') return { handle: exported as AnyHandler };
      break;
    case 'koa':
      if (isKoa(exported)) return { handle: exported.callback() };
      break;
    case 'fastify':
      if (isFastify(exported)) return hostFastify(exported);
      break;
    case 'nest':
      if (isNest(exported)) return hostNest(exported);
      break;
    case 'factory':
      if (typeof exported === 'function') return hostAs(await (exported as () => unknown)(), 'auto', ctx, false);
      break;
    case 'auto': {
      if (typeof exported === 'function' && exported.length >= 2) return { handle: exported as AnyHandler };
      if (isFastify(exported)) return hostFastify(exported);
      if (isKoa(exported)) return { handle: exported.callback() };
      if (isNest(exported)) return hostNest(exported);
      if (typeof exported === 'function' && exported.length === 0 && factoryAllowed) {
        return hostAs(await (exported as () => unknown)(), 'auto', ctx, false);
      }
      break;
    }
    default:
      assertNever(as);
  }
  if (isObject(exported)) {
    for (const key of ['default', 'handler'] as const) {
      const inner: unknown = exported[key];
      if (inner !== undefined && inner !== exported) return hostAs(inner, as, ctx, factoryAllowed);
    }
  }
  return undefined;
}

async function hostFastify(app: FastifyLike): Promise<AppHandler> {
  await app.ready();
  return { handle: (req, res) => app.routing(req, res), close: async () => { await app.close(); } };
}

/** A NestJS app: `init()` registers its routes on the HTTP adapter's instance (Express or fastify), which serves. */
async function hostNest(app: NestLike): Promise<AppHandler> {
  await app.init();
  const instance = app.getHttpAdapter().getInstance();
  const close = async (): Promise<void> => { await app.close(); };
  if (isFastify(instance)) {
    await instance.ready();
    return { handle: (req, res) => instance.routing(req, res), close };
  }
  if (typeof instance !== 'function') throw new HotError('HOT_ERR_HANDLER', `the NestJS app's HTTP adapter holds ${describe(instance)}`);
  return { handle: instance as AnyHandler, close };
}

function describe(value: unknown): string {
  if (typeof value === 'function') {
    const kind = value.constructor?.name === 'AsyncFunction' ? 'an async function' : 'a function';
    return `${kind} of ${value.length} parameter(s)${value.name ? ` (${value.name})` : ''}`;
  }
  if (value === null || value === undefined) return String(value);
  if (typeof value !== 'object') return `a ${typeof value}`;
  const keys = Object.keys(value);
  return keys.length === 0 ? 'an empty object' : `an object with keys ${keys.slice(0, 6).join(', ')}${keys.length > 6 ? ', ...' : ''}`;
}
