import { execFileSync } from 'node:child_process';

/** Figure 4's CPU placement: the servers share one CPU, the load generator (this process) has another. */
export interface Pinning {
  /** Prepended to a server's command line: `taskset -c <cpu>`. */
  serverCommand: string[];
  /** e.g. "servers on CPU 1, load generator on CPU 0". */
  description: string;
  /** Gives this process back the CPUs it had. */
  restore(): void;
}

/**
 * Pins with util-linux's `taskset`, where there is one and this process may use two CPUs or more;
 * otherwise answers why not, and the figure runs unpinned.
 *
 * Why: the two CPUs of a VM need not run equally fast at the same moment, and a server stays on the
 * CPU the scheduler first gave it. With both servers on one CPU, taking turns, such a difference
 * falls on both: on the 2-core VM of docs/BENCHMARKS.md, figure 4's rounds' ratios spread
 * 0.72–1.59 unpinned and 0.96–1.06 pinned.
 */
export function pinServers(): Pinning | string {
  let list: string;
  try {
    list = execFileSync('taskset', ['-c', '-p', String(process.pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return 'taskset (util-linux) is not available';
  }
  const cpus = parseCpuList(list.slice(list.lastIndexOf(':') + 1));
  const [generator, server] = cpus;
  if (generator === undefined || server === undefined) return `this process may run on ${cpus.length} CPU(s) only`;
  // -a: every thread of this process (libuv's pool and V8's helpers too), not just the main one.
  execFileSync('taskset', ['-a', '-c', '-p', String(generator), String(process.pid)], { stdio: 'ignore' });
  return {
    serverCommand: ['taskset', '-c', String(server)],
    description: `servers on CPU ${server}, load generator on CPU ${generator}`,
    restore: () => execFileSync('taskset', ['-a', '-c', '-p', cpus.join(','), String(process.pid)], { stdio: 'ignore' }),
  };
}

/** "0,2-4" → [0, 2, 3, 4] */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (let c = from; c <= to; c++) cpus.push(c);
  }
  return cpus;
}
