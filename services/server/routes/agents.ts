import type { FastifyInstance } from 'fastify';
import type { HostAgent } from '../../../agent/messages.js';
import { coversApp } from '../auth.js';
import type { ServiceContext } from '../context.js';
import { DeployError } from '../errors.js';
import { isNatsCluster } from '../nats/cluster-agent.js';
import type { HostView } from '../nats/host-views.js';

/**
 * `GET /v1/agents`: every host, its last heartbeat, and of the apps it serves (versions, lagging or
 * not) those the token covers: a token scoped to one app learns nothing of the others.
 */
export function agentRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  app.get('/v1/agents', { config: { action: 'read' } }, async (request) => {
    const principal = request.principal;
    const hosts = (await hostViewsOf(ctx)).map((host) => {
      const apps = Object.fromEntries(Object.entries(host.apps).filter(([name]) => principal !== null && coversApp(principal, name)));
      // A host's own `lagging` says it of the apps shown, so it tells nothing of the others either.
      return { ...host, apps, lagging: Object.values(apps).some((a) => a.lagging) };
    });
    return { hosts };
  });

  // A host removed from the cluster is in no deployment again (`hotdeploy agent --retire` does the same from the host).
  app.delete<{ Params: { host: string } }>('/v1/agents/:host', {
    config: { action: 'activate' },
    schema: { params: { type: 'object', required: ['host'], properties: { host: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } } } },
  }, async (request) => {
    // A host serves every app: a token scoped to some apps may not take it from the others (a known
    // token's try at a change outside its scope is audited, as the scope hook audits pushes).
    if (request.principal?.apps !== '*') {
      await ctx.audit.append({ who: request.principal?.name ?? 'unknown', what: 'retire', reason: `host ${request.params.host}`, outcome: 'denied', code: 'DEPLOY_ERR_FORBIDDEN' });
      throw new DeployError('DEPLOY_ERR_FORBIDDEN', 'retiring a host needs a token that covers every app');
    }
    const cluster = ctx.options.agents.find(isNatsCluster);
    if (!cluster) throw new DeployError('DEPLOY_ERR_ROUTE_NOT_FOUND', 'hosts are retired only with --nats');
    const { removed } = await cluster.retire(request.params.host);
    if (!removed) throw new DeployError('DEPLOY_ERR_HOST_NOT_FOUND', request.params.host);
    await ctx.audit.append({ who: request.principal?.name ?? 'unknown', what: 'retire', reason: `host ${request.params.host}`, outcome: 'removed' });
    return { host: request.params.host, retired: true };
  });
}

/** Every host of every attached agent (also the metrics' agent gauges). */
export async function hostViewsOf(ctx: ServiceContext): Promise<HostView[]> {
  const hosts: HostView[] = [];
  for (const agent of ctx.options.agents) {
    hosts.push(...(isNatsCluster(agent) ? await agent.hosts() : [await inProcess(agent, ctx)]));
  }
  return hosts;
}

/** The agent inside `serve`: it serves what the pointers name (it is part of every deployment). */
async function inProcess(agent: HostAgent, ctx: ServiceContext): Promise<HostView> {
  const apps: HostView['apps'] = {};
  for (const name of await ctx.store.apps()) {
    const { current } = await ctx.store.pointers(name);
    if (current === null) continue;
    const workers = await Promise.race([
      agent.workers(name).then((w) => w.length, () => 0),
      new Promise<number>((resolve) => setTimeout(resolve, 2_000, 0).unref()),
    ]);
    apps[name] = { version: current, workers, desired: current, lagging: false };
  }
  return { host: agent.host, transport: 'in-process', alive: true, apps, lagging: false };
}
