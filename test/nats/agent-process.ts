import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cleanEnv, MAIN, REPO } from '../cli/processes.js';

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  /** SIGKILL (the agent only: its PM2 daemon and workers live on), and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM, SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/**
 * `hotdeploy agent` from dist/ as a real child process with its own PM2 home and data directory;
 * resolves once it reads commands. PORT reaches the app because the agent passes it on (`--pass-env`):
 * each host serves the same bundle on its own port. `env`: more of the agent's environment.
 */
export async function startAgent(options: { nats: string; name: string; prefix: string; dataDir: string; pm2Home: string; port: number; env?: NodeJS.ProcessEnv }): Promise<AgentProcess> {
  const args = [MAIN, 'agent', '--nats', options.nats, '--nats-prefix', options.prefix, '--name', options.name, '--data-dir', options.dataDir, '--heartbeat', '300',
    '--pm2-home', options.pm2Home, '--pass-env', 'PORT'];
  const env = cleanEnv({ PORT: String(options.port), HOTDEPLOY_LOG_LEVEL: 'info', ...options.env });
  const child = spawn(process.execPath, args, { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (text += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (text += c));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent ${options.name} not ready within 30 s:\n${text}`)), 30_000);
    const check = (): void => {
      if (!/reading commands from/.test(text)) return;
      clearTimeout(timer);
      resolve();
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent ${options.name} exited ${code}:\n${text}`));
    });
  });
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(sig);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, output: () => text, kill: () => signal('SIGKILL'), stop: () => signal('SIGTERM') };
}
