import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { cleanEnv, MAIN, REPO, startServe } from './processes.js';

const require = createRequire(import.meta.url);

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

  it('the CI examples build, npm pack and push with the CLI or curl', async () => {
    for (const file of ['deploy/ci/github-actions.yml', 'deploy/ci/gitlab-ci.yml']) {
      const text = await readFile(path.join(REPO, file), 'utf8');
      expect(text).toContain('npm pack');
      expect(text).toMatch(/npx --yes hotdeploy@\S+ push "\$BUNDLE" --app "\$APP" --version git/);
      expect(text).toMatch(/curl --fail-with-body -sS -T "\$BUNDLE"/);
      expect(text).toContain('X-Bundle-Sha256');
    }
  });
});
