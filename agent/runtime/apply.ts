import type { UpdateResult } from '../messages.js';
import type { AppState, ModuleRecord } from './app-state.js';
import { loader } from './cjs.js';
import { beginEsmApply } from './esm-apply.js';
import { resolveHandler } from './entry-shapes.js';
import type { AppHandler, HandlerHost } from './handler.js';
import { describeError } from './error-location.js';
import type { AcceptErrorHandler } from './hot-api.js';
import { hostContext } from './load-entry.js';
import type { UpdatePlan } from './plan.js';
import { fromRel } from './registry.js';

type ApplyPlan = Extract<UpdatePlan, { kind: 'apply' }>;
type Task = () => Promise<void>;

export interface ApplyOutcome {
  result: Pick<UpdateResult, 'outcome' | 'disposed' | 'accepted' | 'error'>;
}

/**
 * webpack's apply phase, for one app: dispose the outdated modules (dispose handlers fill
 * `hot.data`), evict them, move the app to the new release, run the accepting parents' handlers,
 * re-require self-accepted modules, and — when the change reached the entry in handler mode —
 * re-evaluate the entry and swap the handler. Errors do not stop the phase (so the app is never
 * half-moved); the first one makes the outcome `failed` and status `fail`.
 */
export async function applyPlan(app: AppState, host: HandlerHost, plan: ApplyPlan): Promise<ApplyOutcome> {
  const errors: unknown[] = [];
  const retire: Task[] = [];
  const { propagation } = plan;
  const from = app.dir;

  // The old versions' `accept(errHandler)`: the new version of a module that throws never got to register one.
  const selfErrorHandlers = new Map(propagation.selfAccepted.map((rel) => [rel, app.records.get(rel)?.hot.selfAcceptErrorHandler]));
  const esm = app.esm && beginEsmApply(app.esm, app.graph, propagation, (rel) => app.isLoaded(rel));
  void app.setStatus('dispose');
  app.pendingData = new Map();
  for (const rel of propagation.outdated) {
    const record = app.records.get(rel);
    if (record) dispose(app, record, errors, retire);
    else await app.esm?.dispose(rel, errors, retire);
  }
  for (const rel of plan.gone) {
    app.pendingData.delete(rel);
    app.esm?.forget(rel);
    app.graph.drop(rel);
  }

  app.moveTo(plan);

  void app.setStatus('apply');
  const accepted = new Set<string>();
  for (const [parentRel, deps] of propagation.acceptedBy) {
    const load = deps.filter((d) => !plan.gone.includes(d));
    const took = esm?.acceptors.has(parentRel)
      ? await esm.accept(parentRel, load, errors)
      : runAcceptHandlers(app, parentRel, load, deps, errors);
    if (took) accepted.add(parentRel);
  }
  for (const rel of propagation.selfAccepted) {
    if (plan.gone.includes(rel)) continue;
    const took = esm?.acceptors.has(rel)
      ? await esm.accept(rel, [rel], errors)
      : requireSelfAccepted(app, rel, selfErrorHandlers.get(rel), errors);
    if (took) accepted.add(rel);
  }
  let next: AppHandler | undefined;
  if (propagation.entryReached && app.mode === 'handler') {
    try {
      const exported = app.esm ? await app.esm.importCurrent(app.entry) : loader._load(fromRel(app.dir, app.entry), null, false);
      next = await resolveHandler(exported, hostContext(app));
      accepted.add(app.entry);
    } catch (err) {
      errors.push(err);
    }
  }
  await esm?.finish(app.entry, errors, retire);
  // The worker serves the last entry that evaluated. After a failure with no new entry, what the
  // old handler may still use is not retired until a later update replaces it.
  if (next) host.swap(next, retire);
  else if (errors.length === 0) host.swap(host.app, retire);
  else host.defer(retire);
  await app.setStatus(errors.length === 0 ? 'idle' : 'fail');
  const error = errors[0];
  return {
    result: {
      outcome: error === undefined ? 'hot' : 'failed',
      disposed: [...propagation.outdated].sort(),
      accepted: [...accepted].sort(),
      ...(error === undefined ? {} : { error: describeError(error, [app.dir, from, ...app.releasesInUse()]) }),
    },
  };
}

/** Runs a module's dispose handlers (filling `hot.data` for its next version) and evicts it. */
export function dispose(app: AppState, record: ModuleRecord, errors: unknown[], retire: Task[]): void {
  const data: Record<string, unknown> = {};
  for (const handler of [...record.hot.disposeHandlers]) {
    try {
      handler(data);
    } catch (err) {
      errors.push(err);
    }
  }
  record.api.active = false;
  app.pendingData.set(record.rel, data);
  for (const handler of record.hot.retireHandlers) retire.push(async () => handler());
  app.dropStatusHandlersOf(record.rel);
  app.evict(record);
  // A CommonJS module imported by an ES module: its facade there is a version too.
  app.esm?.retire(record.rel);
}

/**
 * webpack groups an accepting parent's outdated dependencies by callback. The runtime requires the
 * new version of each first (CommonJS has no live bindings), so a callback can simply `require` it
 * again; an evaluation error goes to the dependency's error handler like a callback error.
 * Returns whether the parent took the update (no error left unhandled).
 */
function runAcceptHandlers(app: AppState, parentRel: string, load: string[], deps: string[], errors: unknown[]): boolean {
  const parent = app.records.get(parentRel);
  if (!parent) return false;
  const errorsBefore = errors.length;
  const byCallback = new Map<(deps: string[]) => void, string[]>();
  const failed = new Set<string>();
  for (const dep of load) {
    try {
      app.requireFor(parent, dep);
    } catch (err) {
      failed.add(dep);
      handleAcceptError(err, parent.hot.acceptedDeps.get(dep)?.errorHandler, { moduleId: parentRel, dependencyId: dep }, errors);
    }
  }
  for (const dep of deps) {
    const callback = parent.hot.acceptedDeps.get(dep)?.callback;
    if (!callback || failed.has(dep)) continue;
    byCallback.set(callback, [...(byCallback.get(callback) ?? []), dep]);
  }
  for (const [callback, cbDeps] of byCallback) {
    try {
      callback(cbDeps);
    } catch (err) {
      const errorHandler = parent.hot.acceptedDeps.get(cbDeps[0]!)?.errorHandler;
      handleAcceptError(err, errorHandler, { moduleId: parentRel, dependencyId: cbDeps[0]! }, errors);
    }
  }
  // Accepted unless an error went unhandled (webpack: a handled error still applies the update).
  return errors.length === errorsBefore;
}

/** webpack: a self-accepted module is required again; `accept(errHandler)` gets its evaluation error. */
function requireSelfAccepted(app: AppState, rel: string, oldHandler: AcceptErrorHandler | undefined, errors: unknown[]): boolean {
  const file = fromRel(app.dir, rel);
  const parentRel = [...app.graph.parentsOf(rel)].find((p) => app.records.has(p));
  try {
    if (parentRel) app.requireFor(app.records.get(parentRel)!, rel);
    else loader._load(file, null, false);
    return true;
  } catch (err) {
    const errorsBefore = errors.length;
    handleAcceptError(err, oldHandler, { moduleId: rel, module: loader._cache[file] }, errors);
    return errors.length === errorsBefore;
  }
}

function handleAcceptError(
  err: unknown,
  handler: AcceptErrorHandler | undefined,
  context: Parameters<AcceptErrorHandler>[1],
  errors: unknown[],
): void {
  if (!handler) {
    errors.push(err);
    return;
  }
  try {
    handler(err, context);
  } catch (handlerErr) {
    errors.push(handlerErr);
  }
}
