import type { HostPlan, WorkerPlan } from '../../../agent/messages.js';
import type { PlanAnswer } from '../../server/routes/plan.js';
import { APP_PATTERN } from '../../server/schemas.js';
import type { Client } from '../client.js';
import { checkName, connectionArgs, defineCliCommand, segment } from '../command.js';
import { ExitCode, type ExitCodeValue } from '../errors.js';
import { type Io, oneLine, renderTable, uploadProgress, writeJson, writeLine } from '../output.js';
import { describeBundle, prepareBundle } from '../pack.js';

export interface PlanOptions {
  app: string;
  /** A directory (packed like `npm pack`, as `push` does) or a .tgz. */
  source: string;
  json?: boolean;
}

/**
 * The dry run (`POST /v1/apps/:app/plan`): which loaded modules would hot-swap in each
 * worker and which chain forces a reload, without deploying. A plan is a report: exit 0 whatever
 * path it predicts, non-zero only when it could not be made (the same codes as every command).
 */
export async function plan(client: Client, options: PlanOptions, io: Io): Promise<ExitCodeValue> {
  const json = options.json ?? false;
  checkName('app', options.app, APP_PATTERN);
  const bundle = await prepareBundle(options.source);
  try {
    if (!json) writeLine(io.err, `planning ${options.app} (${describeBundle(bundle)})`);
    const progress = uploadProgress(io, json);
    const { body } = await client.request<PlanAnswer>('POST', `/v1/apps/${segment(options.app)}/plan`, {
      upload: bundle,
      onProgress: (sent, total) => progress?.update(sent, total),
    }).finally(() => progress?.stop());
    if (json) writeJson(io, body);
    else printPlan(io, body);
    return ExitCode.ok;
  } finally {
    await bundle.cleanup();
  }
}

function printPlan(io: Io, answer: PlanAnswer): void {
  const verdicts = answer.hosts.map((h) => `${h.host} ${h.path}`).join(', ');
  writeLine(io.out, `plan of ${answer.app} against ${answer.current ?? 'no current release'}: ${verdicts || 'no host planned'}`);
  if (answer.hosts.length > 0) writeLine(io.out, renderPlan(answer.hosts));
  for (const host of answer.unplanned) writeLine(io.out, `not planned on ${host.host}: ${host.reason}`);
  if (answer.note) writeLine(io.out, answer.note);
  writeLine(io.out, 'nothing was deployed');
}

/** host, worker, pid, would-be path, outdated modules, chain / reason. */
export function renderPlan(hosts: HostPlan[]): string {
  const rows: Array<Array<string | number>> = [];
  for (const host of hosts) {
    // No per-worker answer: nothing runs yet (start), or the host reloads as a whole (env, instances).
    if (host.workers.length === 0) rows.push([host.host, '-', '-', host.path, '-', oneLine(host.reason ?? startReason(host))]);
    for (const worker of host.workers) rows.push([host.host, `#${worker.pmId}`, worker.pid ?? '-', worker.hot ? 'hot' : 'reload', outdated(worker), why(worker)]);
  }
  return renderTable(['host', 'worker', 'pid', 'path', 'outdated', 'chain / reason'], rows, true);
}

function startReason(host: HostPlan): string {
  return host.path === 'start' ? 'no worker runs this app here: the deploy would start it' : '';
}

function outdated(worker: WorkerPlan): string {
  const modules = worker.update?.outdated ?? [];
  return modules.length === 0 ? (worker.update?.outcome === 'unchanged' ? '(unchanged)' : '-') : modules.join(' ');
}

function why(worker: WorkerPlan): string {
  const { update } = worker;
  // Without the runtime's answer (the worker is down, or did not answer) the agent's reason is all there is.
  if (!update) return oneLine(worker.reason ?? '');
  // webpack's abort message already carries the propagation chain; the bare chain is the fallback.
  const chain = update.chain?.length ? `chain ${update.chain.join(' -> ')}` : '';
  return oneLine(update.reason ?? update.error?.message ?? chain);
}

export const planCommand = defineCliCommand({
  meta: { name: 'plan', description: 'dry run: which modules would hot-swap and what forces a reload, without deploying' },
  args: {
    app: { type: 'positional', description: 'app name', required: true },
    source: { type: 'positional', description: 'app directory or .tgz bundle', required: true },
    ...connectionArgs,
  },
  run: (args, ctx) => plan(ctx.client(args), { app: args.app, source: args.source, json: args.json ?? false }, ctx.io),
});
