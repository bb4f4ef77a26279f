import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostAgent, HostObservation, WorkerState } from '../../agent/messages.js';
import { AuditLog } from '../../services/server/audit-log.js';
import { Deployments } from '../../services/server/deployments.js';
import { EventBus } from '../../services/server/events.js';
import { resolveOptions } from '../../services/server/options.js';
import { driftOf, Reconciler } from '../../services/server/reconcile.js';
import { ReleaseStore } from '../../services/server/release-store.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/tmp.js';

const worker = (pmId: number, version: string | null, status = 'online'): WorkerState => ({ host: 'h', pmId, pid: 100 + pmId, version, status });

describe('driftOf', () => {
  it('is empty when every pointer and every answering worker is on the record', () => {
    expect(driftOf('2', [{ host: 'h', pointer: '2', workers: [worker(0, '2'), worker(1, '2')] }])).toEqual([]);
  });

  it('names a pointer elsewhere or missing, a worker on another version, a host with no worker', () => {
    expect(driftOf('2', [
      { host: 'a', pointer: '1', workers: [worker(0, '2'), worker(1, '1')] },
      { host: 'b', pointer: null, workers: [] },
      { host: 'c', pointer: '2', workers: [] },
    ])).toEqual(['a: the agent\'s pointer is 1', 'a#1 serves 1', 'b: the agent\'s pointer is missing', 'c: no worker runs it']);
  });

  it('does not count a worker that does not answer (booting, restarting): PM2 brings it back on the pointer', () => {
    expect(driftOf('2', [{ host: 'h', pointer: '2', workers: [worker(0, null, 'launching'), worker(1, '2')] }])).toEqual([]);
  });

  it('compares an agent that does not tell its pointer by its workers alone', () => {
    expect(driftOf('2', [{ host: 'h', workers: [] }])).toEqual([]);
    expect(driftOf('2', [{ host: 'h', workers: [worker(0, '1')] }])).toEqual(['h#0 serves 1']);
  });
});

describe('Reconciler.check', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir('hotdeploy-drift-')));
  afterEach(() => cleanup());

  /** An agent that observes what the test says. */
  class Observed extends ScriptedAgent {
    seen: HostObservation[] = [];
    async observe(): Promise<HostObservation[]> {
      return this.seen;
    }
  }

  function reconciler(agents: HostAgent[]): { store: ReleaseStore; reconciler: Reconciler } {
    const store = new ReleaseStore(dir, resolveOptions({ dataDir: dir }));
    const log = pino({ level: 'silent' });
    const deployments = new Deployments(store, agents, new EventBus(), new AuditLog(path.join(dir, 'audit.log')), log, 10);
    return { store, reconciler: new Reconciler(store, deployments, agents, log) };
  }

  it('finds drift against the record, none while a canary holds the app, and again once it ends', async () => {
    const agent = new Observed('h');
    agent.seen = [{ host: 'h', pointer: '2', workers: [worker(0, '2'), worker(1, '3')] }];
    const { store, reconciler: r } = reconciler([agent]);
    await mkdir(store.appDir('demo'), { recursive: true });
    await store.setPointers('demo', '2', '1');
    expect((await r.check('demo')).drift).toEqual(['h#1 serves 3']);
    const canaries = new Set(['demo']);
    const undo = r.exempt((app) => canaries.has(app));
    expect((await r.check('demo')).drift).toEqual([]);
    expect(await r.reconcile('demo', 'test')).toBeNull();
    expect(agent.requests).toEqual([]);
    canaries.clear();
    expect((await r.check('demo')).drift).toEqual(['h#1 serves 3']);
    undo();
    expect(r.isExempt('demo')).toBe(false);
  });

  it('finds nothing to converge to for an app without a current release', async () => {
    const agent = new Observed('h');
    agent.seen = [{ host: 'h', pointer: '1', workers: [worker(0, '1')] }];
    const { reconciler: r } = reconciler([agent]);
    expect(await r.check('demo')).toMatchObject({ current: null, drift: [] });
  });
});
