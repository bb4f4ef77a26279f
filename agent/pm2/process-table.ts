import type { BusPacket, Pm2Client, Pm2Process } from './client.js';

/**
 * Each app's PM2 processes, kept between deploys so a hot deploy does not ask the daemon first.
 * `describe` is a round trip through the daemon that also measures every process it runs
 * (`getMonitorData`: pidusage and the whole `pm2_env` of each, issue 6), and the list rarely changes
 * between two deploys.
 *
 * The list is the daemon's own answer to `describe`; PM2's bus only says when it may be stale. The
 * daemon publishes a `process:event` (start, online, exit, restart overlimit, delete, …) for every
 * change of a process, so an app's list is kept until an event names the app, this process starts,
 * reloads, scales or deletes it (`changing`, whose answer can arrive before its events), or the
 * connection to the daemon is lost or made anew (events in between were missed). Then the next
 * `processes` asks the daemon again. A list is kept only when nothing about the app arrived while
 * `describe` was on its way. So a kept list is as current as a `describe` at the same moment would
 * be, up to the bus's own delay, the same window a `describe` leaves before the update is sent.
 */
export class ProcessTable {
  private readonly lists = new Map<string, Pm2Process[]>();
  /** Bumped per app on each event about it; `all` on events about any app. */
  private readonly generations = new Map<string, number>();
  private all = 0;

  constructor(private readonly client: Pm2Client) {
    client.on('event', (packet: BusPacket) => this.forget(packet.process?.name));
    client.on('changing', (app: string) => this.forget(app));
    client.on('lost', () => this.forget(undefined));
    client.on('connected', () => this.forget(undefined));
  }

  /** The app's processes, sorted by pm_id: the kept list, else the daemon's answer (kept when still current). */
  async processes(app: string): Promise<Pm2Process[]> {
    const kept = this.lists.get(app);
    if (kept) return kept.map((p) => ({ ...p }));
    const before = this.generation(app);
    const procs = await this.client.describe(app);
    if (this.generation(app) === before) this.lists.set(app, procs.map((p) => ({ ...p })));
    return procs;
  }

  /** Whether the next `processes(app)` answers without asking the daemon (tests, diagnostics). */
  has(app: string): boolean {
    return this.lists.has(app);
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

  private generation(app: string): string {
    return `${this.all}.${this.generations.get(app) ?? 0}`;
  }
}
