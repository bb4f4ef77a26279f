import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ActivationRequest, AppManifest, HostAgent, HostPlan, PlanningAgent } from '../../../agent/messages.js';
import type { ServiceContext } from '../context.js';
import { isDeployError } from '../errors.js';
import { isNatsCluster } from '../nats/cluster-agent.js';
import type { StagedBundle } from '../release-store.js';
import { appParams, bundleHeaders, type AppParams } from '../schemas.js';
import { bundleBody } from './releases.js';

/** An attached agent that could not dry-run: it has no `plan`, or its plan failed. */
export interface UnplannedHost {
  host: string;
  reason: string;
}

/** `POST /v1/apps/:app/plan`'s answer. */
export interface PlanAnswer {
  app: string;
  /** The app's current release (what the plan compares against on the service's side). */
  current: string | null;
  bundle: { sha256: string; bundleBytes: number; files: number; bytes: number };
  manifest: AppManifest;
  hosts: HostPlan[];
  unplanned: UnplannedHost[];
  /** Set when no host planned at all, saying why. */
  note?: string;
}

export const NO_AGENT_PLAN = 'no host agent is attached: there are no workers to dry-run against';

/** An agent that neither plans on this host nor across NATS hosts. */
const NO_PLAN_REASON = 'this agent cannot dry-run a bundle';

/**
 * `hotdeploy plan`: the bundle is received, unpacked and checked exactly as an upload
 * (same limits, same codes), but into the staging area only, and every agent on this host that can
 * plan (`PlanningAgent`) dry-runs it in its workers; the NATS cluster agent has every live host
 * dry-run it (a prepare that keeps nothing). No release, pointer, deployment or worker
 * changes; the staging copy is removed before the answer is sent. Action `push`: a dry run costs
 * what an upload costs (disk, unpacking, a pass in every worker), so a read-only token cannot cause it.
 */
export function planRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  app.post<{ Params: AppParams; Headers: { 'x-bundle-sha256'?: string } }>('/v1/apps/:app/plan', {
    config: { action: 'push', auditAs: 'plan' },
    schema: { params: appParams, headers: bundleHeaders },
  }, async (request) => {
    const { app: name } = request.params;
    const by = request.principal?.name ?? 'unknown';
    try {
      const { stream, expectedSha256 } = bundleBody(ctx, request.body, request.headers);
      const answer = await ctx.store.stage(name, stream, { expectedSha256 }, (staged) => planOn(ctx, name, staged));
      await ctx.audit.append({ who: by, what: 'plan', app: name, sha256: answer.bundle.sha256, outcome: 'planned',
        reason: answer.hosts.map((h) => `${h.host}: ${h.path}`).join(', ') || answer.note });
      request.log.info({ app: name, sha256: answer.bundle.sha256, paths: answer.hosts.map((h) => h.path) }, 'plan');
      return answer;
    } catch (err) {
      const code = isDeployError(err) ? err.code : 'DEPLOY_ERR_INTERNAL';
      await ctx.audit.append({ who: by, what: 'plan', app: name, outcome: 'rejected', code });
      throw err;
    }
  });
}

async function planOn(ctx: ServiceContext, app: string, staged: StagedBundle): Promise<PlanAnswer> {
  const { current } = await ctx.store.pointers(app);
  const request: ActivationRequest = {
    // Never a stored version: the dry run names itself so logs cannot confuse it with a release.
    deploymentId: `plan-${randomBytes(5).toString('hex')}`,
    app,
    version: `plan-${randomBytes(4).toString('hex')}`,
    releaseDir: staged.root,
    manifest: staged.manifest,
    previous: current === null ? null : { version: current, releaseDir: ctx.store.releaseDir(app, current) },
    kind: 'push',
    strategy: 'auto',
  };
  const hosts: HostPlan[] = [];
  const unplanned: UnplannedHost[] = [];
  await Promise.all(ctx.options.agents.map(async (agent) => {
    if (isNatsCluster(agent)) {
      const cluster = await agent.planHosts(request, { file: staged.file, sha256: staged.sha256 });
      return void (hosts.push(...cluster.hosts), unplanned.push(...cluster.unplanned));
    }
    if (!isPlanningAgent(agent)) return void unplanned.push({ host: agent.host, reason: NO_PLAN_REASON });
    try {
      hosts.push(await agent.plan(request));
    } catch (err) {
      unplanned.push({ host: agent.host, reason: `the dry run failed: ${(err as Error).message}` });
    }
  }));
  hosts.sort((a, b) => (a.host < b.host ? -1 : 1));
  unplanned.sort((a, b) => (a.host < b.host ? -1 : 1));
  const { sha256, bundleBytes, files, bytes, manifest } = staged;
  const note = ctx.options.agents.length === 0 ? NO_AGENT_PLAN : hosts.length === 0 ? 'no attached agent could dry-run this bundle' : undefined;
  return { app, current, bundle: { sha256, bundleBytes, files, bytes }, manifest, hosts, unplanned, ...(note ? { note } : {}) };
}

/** Duck-typed: agents come from other modules (the PM2 agent, tests), and identity checks go by shape. */
export function isPlanningAgent(agent: HostAgent): agent is PlanningAgent {
  return typeof (agent as Partial<PlanningAgent>).plan === 'function';
}
