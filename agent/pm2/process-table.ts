import { HotError } from '../errors.js';
import type { BusPacket, Pm2Client, Pm2Process, Pm2StartOptions } from './client.js';
import { appOfPm2Name, isOwnProcess, pm2Name } from './names.js';

/**
 * The only way the agent reaches an app's PM2 processes: found by listing and the marker, acted on
 * by pm_id. Each app's list is also kept between deploys so a hot deploy does not ask the daemon
 * first: listing is a round trip through the daemon that also measures every process it runs
 * (`getMonitorData`: pidusage and the whole `pm2_env` of each), and the list rarely changes between
 * two deploys.
 *
 * PM2's bus only says when a kept list may be stale. The daemon publishes a `process:event` (start,
 * online, exit, restart overlimit, delete, …) for every change of a process, so an app's list is
 * kept until an event names the app, the agent starts, reloads, scales or deletes its processes
 * (before and after the call, whose answer can arrive before its events), or the connection to the
 * daemon is lost or made anew (events in between were missed). A list is kept only when nothing
 * about the app arrived while the daemon was being asked. So a kept list is as current as a listing
 * at the same moment would be, up to the bus's own delay.
 */
export class ProcessTable {
  private readonly lists = new Map<string, Pm2Process[]>();
  /** Bumped per app on each event about it; `all` on events about any app. */
  private readonly generations = new Map<string, number>();
  private all = 0;

  constructor(private readonly client: Pm2Client, private readonly dataDir: string) {
    client.on('event', (packet: BusPacket) => this.forgetName(packet.process?.name));
    client.on('lost', () => this.forget(undefined));
    client.on('connected', () => this.forget(undefined));
  }

  /** The app's processes, sorted by pm_id: the kept list, else the daemon's answer (kept when still current). */
  async processes(app: string): Promise<Pm2Process[]> {
    const kept = this.lists.get(app);
    if (kept) return kept.map((p) => ({ ...p }));
    const before = this.generation(app);
    const procs = await this.fresh(app);
    if (this.generation(app) === before) this.lists.set(app, procs.map((p) => ({ ...p })));
    return procs;
  }

  /** The app's processes as the daemon reports them now. */
  async fresh(app: string): Promise<Pm2Process[]> {
    return (await this.client.list()).filter((p) => isOwnProcess(p, this.dataDir, app));
  }

  /** Whether the next `processes(app)` answers without asking the daemon (tests, diagnostics). */
  has(app: string): boolean {
    return this.lists.has(app);
  }

  /**
   * Starts the app's processes under `hd-<app>`. PM2's `start` restarts a process that already has
   * the name instead, with the starting process's env: one that is not the app's is refused.
   */
  async start(app: string, options: Omit<Pm2StartOptions, 'name'>): Promise<void> {
    const name = pm2Name(app);
    const taken = (await this.client.list()).filter((p) => p.name === name && !isOwnProcess(p, this.dataDir, app));
    if (taken.length > 0) {
      throw new HotError('HOT_ERR_PM2_NAME_TAKEN', `${name} is pm_id ${taken.map((p) => p.pmId).join(', ')}, which hotdeploy did not start for ${app}`);
    }
    await this.changing(app, () => this.client.start({ ...options, name }));
  }

  /** Graceful reload of the given processes, one at a time (each within `timeoutMs`). */
  async reload(app: string, pmIds: number[], timeoutMs: number): Promise<void> {
    await this.changing(app, async () => {
      for (const pmId of pmIds) await this.client.reload(pmId, timeoutMs);
    });
  }

  async delete(app: string, pmIds: number[], timeoutMs?: number): Promise<void> {
    await this.changing(app, () => Promise.all(pmIds.map((pmId) => this.client.delete(pmId, timeoutMs))));
  }

  /** `count` more processes like `pmId` (PM2's scale up: same settings, env and script). */
  async duplicate(app: string, pmId: number, count: number, timeoutMs: number): Promise<void> {
    await this.changing(app, async () => {
      for (let i = 0; i < count; i += 1) await this.client.duplicate(pmId, timeoutMs);
    });
  }

  /** Drops the app's list (every app's when the name is unknown). */
  forget(app: string | undefined): void {
    if (app === undefined || app === '') {
      this.all += 1;
      this.lists.clear();
      return;
    }
    this.generations.set(app, (this.generations.get(app) ?? 0) + 1);
    this.lists.delete(app);
  }

  /** A bus event names a process: `hd-<app>`, or an app's bare name (processes of earlier versions). */
  private forgetName(name: string | undefined): void {
    if (name === undefined || name === '') return this.forget(undefined);
    this.forget(name);
    this.forget(appOfPm2Name(name));
  }

  private async changing<T>(app: string, run: () => Promise<T>): Promise<T> {
    this.forget(app);
    try {
      return await run();
    } finally {
      this.forget(app);
    }
  }

  private generation(app: string): string {
    return `${this.all}.${this.generations.get(app) ?? 0}`;
  }
}
