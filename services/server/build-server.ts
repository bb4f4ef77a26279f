import { chmod, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { AuditLog, type AuditEntry } from './audit-log.js';
import { authorize, loadStoredTokens, storeToken, TokenRegistry, type Principal } from './auth.js';
import type { ServiceContext } from './context.js';
import { dashboardRoutes } from './dashboard/routes.js';
import { Deployments } from './deployments.js';
import { DeployError } from './errors.js';
import { clientErrorHandler, frameworkErrors, installErrorHandlers } from './error-handler.js';
import { EventBus } from './events.js';
import { HealthWatch } from './health-watch.js';
import { metricsSource } from './metrics-source.js';
import { ServiceMetrics } from './metrics.js';
import { resolveOptions, type ServerOptions, type TokenAction } from './options.js';
import { followReadBack } from './nats/read-back.js';
import { Reconciler } from './reconcile.js';
import { recoverIntents, recoverReleaseStore } from './recovery.js';
import { ReleaseStore } from './release-store.js';
import { isNatsCluster } from './nats/cluster-agent.js';
import { agentRoutes } from './routes/agents.js';
import { metricsRoutes } from './routes/metrics.js';
import { appRoutes } from './routes/apps.js';
import { deploymentRoutes } from './routes/deployments.js';
import { eventRoutes } from './routes/events.js';
import { planRoutes } from './routes/plan.js';
import { releaseRoutes } from './routes/releases.js';
import { whoamiRoutes } from './routes/whoami.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** The DEPLOY_ERR_* code the request was answered with, for its log line. */
    errorCode: string | null;
  }
  interface FastifyContextConfig {
    /** What the route's token must allow; routes without one (healthz) are public. */
    action?: TokenAction;
    /** A second action whose tokens may call the route too (push tokens read the manifest they diff against). */
    orAction?: TokenAction;
    /** The audit log's `what` for a denied request, when it is not the action's usual one. */
    auditAs?: AuditEntry['what'];
  }
}

/**
 * The data directory holds every app's bundles and files, the tokens' digests and the audit log:
 * only its owner may enter it. One made beforehand (by `mkdir`, 0755 under the usual umask) is
 * made 0700, and the change logged.
 */
async function restrictDataDir(dir: string, log: FastifyBaseLogger): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { mode } = await stat(dir);
  if ((mode & 0o077) === 0) return;
  await chmod(dir, 0o700);
  log.warn({ dataDir: dir, mode: (mode & 0o777).toString(8) }, 'the data directory was open to other users; it is now 0700');
}

/**
 * The deploy service as a fastify instance that does not listen (fastify's build/listen split):
 * tests use `inject()`, start-server.ts listens. The data directory is recovered (temp leftovers,
 * half-committed releases, interrupted deployments) when the instance becomes ready.
 */
export function buildServer(options: ServerOptions): FastifyInstance {
  const resolved = resolveOptions(options);
  // HTTPS changes only the transport: fastify's types are generic over the server class, the routes are not.
  const app = fastify({
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
    logger: options.logger ?? { level: 'info' },
    // One log line per request (the onResponse hook below) instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false } },
    // fastify's own 503 body has no DEPLOY_ERR_* code; the onRequest hook answers instead.
    return503OnClosing: false,
    // What fastify's router and Node's parser refuse by themselves is answered in the same shape.
    frameworkErrors,
    clientErrorHandler,
  }) as unknown as FastifyInstance;
  const store = new ReleaseStore(resolved.dataDir, resolved, {
    ports: { remote: resolved.agents.some(isNatsCluster) },
    install: { npmrc: resolved.npmrc, timeoutMs: resolved.installTimeoutMs },
  });
  const bus = new EventBus();
  const audit = new AuditLog(path.join(resolved.dataDir, 'audit.log'), app.log);
  const deployments = new Deployments(store, resolved.agents, bus, audit, app.log, resolved.keep);
  const healthWatch = new HealthWatch(resolved.agents, store, deployments, app.log);
  const metrics = new ServiceMetrics(metricsSource(() => ctx));
  metrics.follow(bus);
  const reconciler = new Reconciler(store, deployments, resolved.agents, app.log);
  // A canary holds its app's hosts apart from the record on purpose until it passes or is swapped back.
  reconciler.exempt((name) => deployments.canaryRunning(name));
  const ctx: ServiceContext = { options: resolved, store, deployments, bus, audit, metrics, reconciler, tokens: new TokenRegistry([]) };

  let unfollow = (): void => undefined;
  app.addHook('onReady', async () => {
    await restrictDataDir(resolved.dataDir, app.log);
    await recoverReleaseStore(store);
    const interrupted = await recoverIntents(deployments, audit, app.log);
    const left = await deployments.recover();
    const stored = options.tokens ? options.tokens.map(storeToken) : await loadStoredTokens(resolved.dataDir);
    ctx.tokens = new TokenRegistry(stored);
    // In the background: agents may take a while to connect, and the API answers meanwhile.
    const unfollowReconnects = reconciler.follow();
    const unfollowReadBack = followReadBack(resolved.agents, deployments, reconciler, app.log);
    unfollow = () => {
      unfollowReconnects();
      unfollowReadBack();
    };
    void reconciler.atStart([...interrupted, ...left]).catch((err: unknown) => app.log.error({ err }, 'reconciling at start failed'));
    healthWatch.start();
  });
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    reconciler.stop();
    unfollow();
    healthWatch.close();
    // Let running deployments finish, but never hang shutdown on an agent that does not answer.
    await Promise.race([deployments.idle(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
  });

  app.decorateRequest('principal', null);
  app.decorateRequest('errorCode', null);
  // 401 before anything else (even before validation: an unknown caller learns nothing about names).
  app.addHook('onRequest', async (request) => {
    if (closing) throw new DeployError('DEPLOY_ERR_SHUTTING_DOWN');
    if (request.routeOptions.config.action !== undefined) request.principal = ctx.tokens.authenticate(request.headers.authorization);
  });
  // 403 once the params are validated, before a handler reads any upload body.
  app.addHook('preHandler', async (request) => {
    const { orAction } = request.routeOptions.config;
    const action = orAction && request.principal?.actions.includes(orAction) ? orAction : request.routeOptions.config.action;
    if (action === undefined || request.principal === null) return;
    const params = request.params as { app?: string; version?: string } | undefined;
    try {
      authorize(request.principal, action, params?.app);
    } catch (err) {
      // A known token trying a change outside its scope is worth an audit line (401s are not: anyone can send those).
      if (action === request.routeOptions.config.action && (action === 'push' || action === 'activate')) {
        const what = request.routeOptions.config.auditAs ?? (action === 'push' ? 'upload' : request.url.includes('/rollback') ? 'rollback' : 'activate');
        await audit.append({ who: request.principal.name, what, app: params?.app, version: params?.version, outcome: 'denied', code: 'DEPLOY_ERR_FORBIDDEN' });
      }
      throw err;
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const params = request.params as { app?: string; version?: string } | undefined;
    request.log.info({
      method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime),
      app: params?.app, version: params?.version, token: request.principal?.name, ...(request.errorCode ? { code: request.errorCode } : {}),
    }, 'request');
  });

  // `curl -X POST -H 'Content-Type: application/json' …/rollback` sends no body: treat it as none
  // (fastify's parser rejects an empty JSON body); anything else goes to fastify's own parser.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') return done(null, undefined);
    parseJson(request, body as string, done);
  });
  installErrorHandlers(app);
  app.get('/healthz', async () => ({ status: 'ok' }));
  releaseRoutes(app, ctx);
  planRoutes(app, ctx);
  appRoutes(app, ctx);
  deploymentRoutes(app, ctx);
  eventRoutes(app, ctx);
  agentRoutes(app, ctx);
  whoamiRoutes(app, ctx);
  metricsRoutes(app, ctx);
  dashboardRoutes(app);
  return app;
}
