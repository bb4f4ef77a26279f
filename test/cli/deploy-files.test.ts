import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Pm2Client } from '../../agent/pm2/client.js';
import { daemonPid } from '../helpers/pm2.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { cleanEnv, MAIN, REPO, startServe } from './processes.js';

const require = createRequire(import.meta.url);
const execFileAsync = promisify(execFile);
const PM2 = path.join(REPO, 'node_modules/.bin/pm2');

async function envFile(): Promise<Record<string, string>> {
  const text = await readFile(path.join(REPO, 'deploy/hotdeploy.env'), 'utf8');
  return Object.fromEntries(text.split('\n').filter((l) => /^[A-Z_0-9]+=/.test(l)).map((l) => l.split('=', 2) as [string, string]));
}

describe('deploy/', () => {
  it('the PM2 ecosystem file runs the built CLI\'s `serve`', () => {
    const config = require(path.join(REPO, 'deploy/ecosystem.config.cjs')) as { apps: Array<{ script: string; args: string; instances: number }> };
    const [app] = config.apps;
    expect(path.resolve(app?.script ?? '')).toBe(MAIN);
    expect(existsSync(MAIN)).toBe(true);
    expect(app).toMatchObject({ args: 'serve', instances: 1 });
  });

  it('the PM2 ecosystem file runs `hotdeploy serve` under a real PM2 daemon', async () => {
    const { dir, cleanup } = await tempDir('hotdeploy-pm2-');
    const env = cleanEnv({
      PM2_HOME: path.join(dir, 'pm2'), HOTDEPLOY_DATA_DIR: path.join(dir, 'data'), HOTDEPLOY_PORT: '0', HOTDEPLOY_HOST: '127.0.0.1',
    });
    const pm2 = (...args: string[]) => execFileAsync(PM2, args, { env, cwd: REPO, timeout: 60_000 });
    try {
      await pm2('start', 'deploy/ecosystem.config.cjs');
      const logs = path.join(dir, 'pm2', 'logs');
      const url = await waitFor('the serving line in the PM2 log', async () => {
        // PM2 names it hotdeploy-out.log or hotdeploy-out-<id>.log depending on the instance settings.
        const names = (await readdir(logs).catch(() => [])).filter((n) => n.startsWith('hotdeploy-out'));
        const texts = await Promise.all(names.map((n) => readFile(path.join(logs, n), 'utf8')));
        return texts.join('').match(/serving on (http:\/\/\S+)/)?.[1];
      }, 30_000);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      const { stdout } = await pm2('jlist');
      const processes = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ name: string; pm2_env: { status: string } }>;
      expect(processes.find((p) => p.name === 'hotdeploy')?.pm2_env.status).toBe('online');
    } finally {
      await pm2('kill').catch(() => undefined);
      // The apps' daemon, which serve's agent started in its data directory, outlives the outer one.
      const apps = path.join(dir, 'data', 'pm2');
      if (daemonPid(apps) !== undefined) await new Pm2Client({ home: apps }).killDaemon().catch(() => undefined);
      await cleanup();
    }
  });

  it('the systemd unit starts `serve` with the example env file, which serve understands', async () => {
    const unit = await readFile(path.join(REPO, 'deploy/hotdeploy.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/hotdeploy\/dist\/services\/cli\/main\.js serve$/m);
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/hotdeploy\/hotdeploy\.env$/m);
    const env = await envFile();
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['HOTDEPLOY_DATA_DIR', 'HOTDEPLOY_HOST', 'HOTDEPLOY_PORT', 'HOTDEPLOY_KEEP']));

    // The same variables, pointed at a temp dir and a free port, configure a real `serve`.
    const { dir, cleanup } = await tempDir('hotdeploy-env-');
    const serve = startServe(['--no-local-agent'], cleanEnv({ ...env, HOTDEPLOY_DATA_DIR: dir, HOTDEPLOY_PORT: '0', HOTDEPLOY_HOST: '127.0.0.1' }));
    try {
      const [, port, dataDir] = await serve.waitFor(/serving on http:\/\/127\.0\.0\.1:(\d+) \(data in (\S+)\)/);
      expect(Number(port)).toBeGreaterThan(0);
      expect(dataDir).toBe(dir);
    } finally {
      await serve.stop();
      await cleanup();
    }
  });

  it('the CI examples install the CLI from a tarball pinned by sha256 (no registry name), and push with it or curl', async () => {
    for (const file of ['deploy/ci/github-actions.yml', 'deploy/ci/gitlab-ci.yml']) {
      const text = await readFile(path.join(REPO, file), 'utf8');
      expect(text).not.toMatch(/npx[^\n]*hotdeploy/);
      expect(text).toMatch(/sha256sum -c -/);
      expect(text).toMatch(/npm install --no-save --prefix \S+ \S*hotdeploy\.tgz/);
      expect(text).toMatch(/hotdeploy-cli\/node_modules\/\.bin\/hotdeploy"? push \. --app "\$APP" --version git/);
      expect(text).toContain('npm shrinkwrap');
      expect(text).toMatch(/curl --fail-with-body -sS -T "\$BUNDLE"/);
      expect(text).toContain('X-Bundle-Sha256');
    }
  });
});
