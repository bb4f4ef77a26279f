import type { ActivationRequest, HostPlan, WorkerPlan } from '../messages.js';
import { HotError } from '../errors.js';
import { describeUpdate, portConflict, targetState } from './activation.js';
import type { WorkerChannel } from './channel.js';
import type { ProcessTable } from './process-table.js';
import { sameEnv } from './state.js';
import type { AppStates } from './state.js';

export interface PlanContext {
  channel: WorkerChannel;
  processes: ProcessTable;
  states: AppStates;
  host: string;
  updateTimeoutMs: number;
}

/**
 * The dry run of an activation (a cluster deploy's prepare): every worker computes its update plan
 * (`HostedApp.plan`, webpack's check pass: nothing disposed), so the host can say hot or not before
 * any host changes. It mirrors `activation`'s choice: a port taken here → refused
 * (`HOT_ERR_PORT_CONFLICT`); no process yet → start; a changed env, a changed instance count, or any
 * worker that cannot take it hot → reload.
 */
export async function planActivation(ctx: PlanContext, request: ActivationRequest): Promise<HostPlan> {
  const target = targetState(request);
  const running = await ctx.states.read(request.app);
  const conflict = await portConflict(ctx.states, ctx.processes, target, running);
  if (conflict) throw new HotError('HOT_ERR_PORT_CONFLICT', conflict);
  const procs = await ctx.processes.fresh(request.app);
  if (procs.length === 0) return { host: ctx.host, path: 'start', workers: [] };
  if (running !== undefined && !sameEnv(running.env, target.env)) {
    return { host: ctx.host, path: 'reload', reason: 'the env or port changed', workers: [] };
  }
  const workers = await Promise.all(procs.map(async (proc): Promise<WorkerPlan> => {
    if (proc.status !== 'online') return { pmId: proc.pmId, pid: proc.pid, hot: false, reason: `worker is ${proc.status}` };
    try {
      const reply = await ctx.channel.request(proc.pmId, { kind: 'plan', releaseDir: request.releaseDir }, ctx.updateTimeoutMs, proc.pid);
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
