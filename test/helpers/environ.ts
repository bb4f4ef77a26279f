import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';

/** What an operator's environment holds and no app may see: the service's token, NATS credentials, anything else. */
export const SECRETS = {
  HOTDEPLOY_TOKEN: 'hd_secret-admin-token-0123456789',
  HOTDEPLOY_NATS_PASS: 'nats-secret-pass-0123456789',
  MY_DB_PASSWORD: 'db-secret-password-0123456789',
};

/**
 * A handler-mode app that answers `GET /environ` with its own `/proc/self/environ` (what the kernel
 * gave the process) followed by its `process.env` as it sees it now, and that writes both to
 * `<dumpDir>/trial-<pid>` when it is evaluated in a trial start (HOTDEPLOY_TRIAL_DIR), which answers
 * no requests. `decline`: message.js declines its updates (the next release takes the trial).
 */
export function environApp(options: { name: string; version: string; port: number; dumpDir: string; decline?: boolean; instances?: number }): Record<string, string | object> {
  return {
    'package.json': { name: options.name, version: '1.0.0', main: 'index.js', hotdeploy: { port: options.port, instances: options.instances ?? 2, env: { DUMP_DIR: options.dumpDir } } },
    'index.js': `
const fs = require('node:fs');
const path = require('node:path');
const message = require('./message.js');
const both = () => fs.readFileSync('/proc/self/environ', 'utf8') + Object.entries(process.env).map(([k, v]) => k + '=' + v + '\\0').join('');
if (process.env.HOTDEPLOY_TRIAL_DIR) fs.writeFileSync(path.join(process.env.DUMP_DIR, 'trial-' + process.pid), both());
module.exports = (req, res) => {
  const environ = req.url === '/environ' ? both() : undefined;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ message, pid: process.pid, environ }));
};
`,
    'message.js': `${options.decline ? 'module.hot.decline();\n' : ''}module.exports = ${JSON.stringify(`${options.name}@${options.version}`)};\n`,
  };
}

/** `NAME=value` entries of an environ block, as a map. */
export function parseEnviron(raw: string): Map<string, string> {
  return new Map(raw.split('\0').filter(Boolean).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

/** Each distinct worker's environ, asked until `count` pids answered. */
export async function workerEnvirons(port: number, count: number, timeoutMs = 10_000): Promise<Map<number, string>> {
  const seen = new Map<number, string>();
  const deadline = Date.now() + timeoutMs;
  while (seen.size < count && Date.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:${port}/environ`, { headers: { connection: 'close' } });
    const body = (await res.json()) as { pid: number; environ: string };
    seen.set(body.pid, body.environ);
  }
  if (seen.size < count) throw new Error(`only ${seen.size} of ${count} workers answered`);
  return seen;
}

/** The environ blocks trial starts wrote to `dumpDir`. */
export async function trialEnvirons(dumpDir: string): Promise<string[]> {
  const names = (await readdir(dumpDir)).filter((n) => n.startsWith('trial-'));
  return Promise.all(names.map((n) => readFile(path.join(dumpDir, n), 'utf8')));
}

/** No secret name or value anywhere in `raw`; the names every app gets are there. */
export function expectClean(raw: string, present: string[] = []): void {
  const env = parseEnviron(raw);
  for (const [name, value] of Object.entries(SECRETS)) {
    expect(env.has(name), `${name} reached the app`).toBe(false);
    expect(raw.includes(value), `the value of ${name} reached the app: ${[...env].filter(([, v]) => v.includes(value)).map(([k, v]) => `${k}=${v.slice(0, 300)}`).join(" ")}`).toBe(false);
  }
  for (const name of ['PATH', 'HOTDEPLOY_APP', 'DUMP_DIR', ...present]) expect(env.has(name), `${name} is missing`).toBe(true);
}
