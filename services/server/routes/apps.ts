import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify';
import type { WorkerState } from '../../../agent/messages.js';
import { coversApp } from '../auth.js';
import type { ServiceContext } from '../context.js';
import { rollbackTarget, type Deployment, type DeploymentKind } from '../deployments.js';
import { DeployError } from '../errors.js';
import { appParams, choicesOf, VERSION_PATTERN, waitQuery, type AppParams, type WaitQuery } from '../schemas.js';

export function appRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  app.get('/v1/apps', { config: { action: 'read' } }, async (request) => {
    const names = (await ctx.store.apps()).filter((n) => request.principal !== null && coversApp(request.principal, n));
    const apps = await Promise.all(names.map(async (name) => {
      await ctx.deployments.retained(name);
      const [pointers, releases] = await Promise.all([ctx.store.pointers(name), ctx.store.list(name)]);
      return { name, current: pointers.current, previous: pointers.previous, releases: releases.length, updatedAt: pointers.updatedAt };
    }));
    return { apps };
  });

  app.get<{ Params: AppParams }>('/v1/apps/:app', { config: { action: 'read' }, schema: { params: appParams } }, async (request) => {
    const { app: name } = request.params;
    await ctx.deployments.retained(name);
    const [pointers, releases] = await Promise.all([ctx.store.pointers(name), ctx.store.list(name)]);
    if (releases.length === 0) throw new DeployError('DEPLOY_ERR_APP_NOT_FOUND', name);
    return { name, current: pointers.current, previous: pointers.previous, updatedAt: pointers.updatedAt, releases, workers: await workersOf(ctx, name, request.log) };
  });

  app.post<{ Params: AppParams; Querystring: WaitQuery; Body: { version: string } }>('/v1/apps/:app/activate', {
    config: { action: 'activate' },
    schema: {
      params: appParams,
      querystring: waitQuery,
      body: { type: 'object', required: ['version'], properties: { version: { type: 'string', pattern: VERSION_PATTERN } } },
    },
  }, async (request, reply) => {
    const { app: name } = request.params;
    const release = await ctx.store.require(name, request.body.version);
    return activate(ctx, reply, { by: request.principal?.name ?? 'unknown', app: name, version: release.version, kind: 'activate', query: request.query });
  });

  app.post<{ Params: AppParams; Querystring: WaitQuery; Body: { to?: string } | undefined }>('/v1/apps/:app/rollback', {
    config: { action: 'activate' },
    schema: {
      params: appParams,
      querystring: waitQuery,
      body: { type: ['object', 'null'], properties: { to: { type: 'string', pattern: VERSION_PATTERN } } },
    },
  }, async (request, reply) => {
    const { app: name } = request.params;
    const to = request.body?.to ?? undefined;
    // Checked now (409 when there is nothing to go back to), chosen again when the rollback runs.
    const version = await rollbackTarget(ctx.store, name, to);
    const choose = to === undefined ? () => rollbackTarget(ctx.store, name) : undefined;
    return activate(ctx, reply, { by: request.principal?.name ?? 'unknown', app: name, version, kind: 'rollback', query: request.query, ...(choose ? { choose } : {}) });
  });
}

/**
 * Activating the version that is already current is a no-op answered 200 with `deployment: null`,
 * unless hosts differ from it: then it is a `reconcile` deployment that brings them back.
 */
interface ActivateAsk {
  by: string;
  app: string;
  version: string;
  kind: DeploymentKind;
  query: WaitQuery;
  /** Chooses the version again when the deployment runs (a rollback without `to`). */
  choose?: () => Promise<string>;
}

async function activate(ctx: ServiceContext, reply: FastifyReply, ask: ActivateAsk): Promise<unknown> {
  const { by, app, version, kind, query, choose } = ask;
  const release = await ctx.store.require(app, version);
  const { current } = await ctx.store.pointers(app);
  let reason: string | undefined;
  if (current === version) {
    const { drift } = await ctx.reconciler.check(app);
    if (drift.length === 0) return reply.status(200).send({ release, deployment: null, message: `${app}@${version} is already current` });
    reason = `${kind} of the current release ${version}: hosts differ from it: ${drift.join('; ')}`;
  }
  const options = choicesOf(query);
  const { deployment, done } = reason === undefined
    ? await ctx.deployments.enqueue(app, version, kind, by, { options, ...(choose ? { choose } : {}) })
    : await ctx.deployments.enqueue(app, version, 'reconcile', by, { reason, options });
  if (!query.wait) return reply.status(202).send({ release, deployment });
  const finished: Deployment = await done;
  return reply.status(200).send({ release, deployment: finished });
}

/** Workers as the host agents see them; an agent that cannot answer is left out (and logged). */
export async function workersOf(ctx: ServiceContext, app: string, log: FastifyBaseLogger): Promise<WorkerState[]> {
  const lists = await Promise.all(ctx.options.agents.map((agent) => agent.workers(app).catch((err: unknown) => {
    log.warn({ app, host: agent.host, err }, 'host agent did not list its workers');
    return [] as WorkerState[];
  })));
  return lists.flat();
}
