import type { ActivationRequest, HostPlan, WorkerPlan } from '../messages.js';
import { describeUpdate, targetState } from './activation.js';
import type { WorkerChannel } from './channel.js';
import type { Pm2Client } from './client.js';
import { readState, sameEnv } from './state.js';

export interface PlanContext {
  client: Pm2Client;
  channel: WorkerChannel;
  dataDir: string;
  host: string;
  updateTimeoutMs: number;
}

/**
 * The dry run of an activation (issue 7's prepare): every worker computes its update plan
 * (`HostedApp.plan`, webpack's check pass: nothing disposed), so the host can say hot or not before
 * any host changes. It mirrors `activation`'s choice: no process yet → start; a changed env, a
 * changed instance count, or any worker that cannot take it hot → reload.
 */
export async function planActivation(ctx: PlanContext, request: ActivationRequest): Promise<HostPlan> {
  const procs = await ctx.client.describe(request.app);
  if (procs.length === 0) return { host: ctx.host, path: 'start', workers: [] };
  const target = targetState(request);
  const running = await readState(ctx.dataDir, request.app);
  if (running !== undefined && !sameEnv(running.env, target.env)) {
    return { host: ctx.host, path: 'reload', reason: 'the env or port changed', workers: [] };
  }
  const workers = await Promise.all(procs.map(async (proc): Promise<WorkerPlan> => {
    if (proc.status !== 'online') return { pmId: proc.pmId, pid: proc.pid, hot: false, reason: `worker is ${proc.status}` };
    try {
      const reply = await ctx.channel.request(proc.pmId, { kind: 'plan', releaseDir: request.releaseDir }, ctx.updateTimeoutMs);
      if (reply.kind !== 'planned') return { pmId: proc.pmId, pid: proc.pid, hot: false, reason: `unexpected answer ${reply.kind}` };
      const hot = reply.result.outcome === 'hot' || reply.result.outcome === 'unchanged';
      return { pmId: proc.pmId, pid: reply.pid, hot, update: reply.result, ...(hot ? {} : { reason: describeUpdate(reply.result) }) };
    } catch (err) {
      return { pmId: proc.pmId, pid: proc.pid, hot: false, reason: (err as Error).message };
    }
  }));
  const why = workers.filter((w) => !w.hot).map((w) => `worker ${w.pmId}: ${w.reason ?? 'not hot'}`);
  if (procs.length !== target.instances) why.push(`${procs.length} instance(s) running, ${target.instances} wanted`);
  return { host: ctx.host, path: why.length === 0 ? 'hot' : 'reload', ...(why.length ? { reason: why.join('; ') } : {}), workers };
}
