import { gateOptions, startApp } from './activation.js';
import type { ActivationSettings } from './activation.js';
import type { WorkerChannel } from './channel.js';
import type { Pm2Process } from './client.js';
import { healthGate } from './health.js';
import type { AgentLogger } from './logger.js';
import { pm2Name } from './names.js';
import type { ProcessTable } from './process-table.js';
import type { AppState } from './state.js';

export interface AdoptContext {
  processes: ProcessTable;
  channel: WorkerChannel;
  settings: ActivationSettings;
  log: AgentLogger;
}

/**
 * Takes over an app's processes that an earlier hotdeploy started under the app's bare name (which
 * PM2's CLI may read as a pm_id or as `all`): the app is started again as `hd-<app>` beside them,
 * and once those workers are up on the pointer's release the old ones are deleted by pm_id (each
 * drains its requests first). Both sets share the port through PM2's cluster primary, so no request
 * is dropped. If the new workers do not come up, they are deleted and the old ones keep serving.
 */
export async function adoptLegacy(ctx: AdoptContext, state: AppState, procs: Pm2Process[]): Promise<void> {
  const { processes, settings, log } = ctx;
  const app = state.app;
  const legacy = procs.filter((p) => p.name !== pm2Name(app)).map((p) => p.pmId);
  const fields = { event: 'adopt', app, version: state.version, legacy };
  if (procs.some((p) => p.name === pm2Name(app))) {
    // An adoption cut short: the new processes exist already, only the old ones are left.
    log.info(fields, 'removing processes left under the app\'s bare name');
    await processes.delete(app, legacy, settings.killTimeoutMs + 5_000);
    return;
  }
  log.info(fields, `taking over processes started under the bare name ${app}: starting ${pm2Name(app)}`);
  const since = Date.now();
  const gate = await startApp(processes, settings, state)
    .then(() => healthGate(processes, ctx.channel, { ...gateOptions(settings, state, since), exclude: legacy }),
      (err: unknown) => ({ ok: false as const, reason: String(err), workers: [] }));
  if (gate.ok) {
    await processes.delete(app, legacy, settings.killTimeoutMs + 5_000);
    log.info({ ...fields, pmIds: gate.workers.map((w) => w.pmId) }, `${app} now runs as ${pm2Name(app)}`);
    return;
  }
  const started = (await processes.fresh(app)).filter((p) => !legacy.includes(p.pmId)).map((p) => p.pmId);
  await processes.delete(app, started, settings.killTimeoutMs + 5_000).catch(() => undefined);
  log.warn({ ...fields, reason: gate.reason }, `could not take over ${app}; its processes keep running under their bare name`);
}
