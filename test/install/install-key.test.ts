import { describe, expect, it } from 'vitest';
import type { DependencyPlan } from '../../services/server/install/bundle-dependencies.js';
import { installKey, type InstallEnvironment } from '../../services/server/install/install-key.js';

type NpmPlan = Extract<DependencyPlan, { kind: 'npm' }>;

function plan(version: string, deps: Record<string, string> = { 'tiny-a': '^1.0.0' }, scripts = false): NpmPlan {
  const lock = {
    name: 'demo', version, lockfileVersion: 3, requires: true,
    packages: { '': { name: 'demo', version, dependencies: deps }, 'node_modules/tiny-a': { version: '1.0.0', integrity: 'sha512-x' } },
  };
  return { kind: 'npm', lockfile: 'package-lock.json', lock: Buffer.from(JSON.stringify(lock, null, 2)), packageJson: { name: 'demo', version, dependencies: deps }, scripts };
}

const env: InstallEnvironment = { npmrc: null, npm: '10.9.2', node: { abi: '127', platform: 'linux', arch: 'x64', libc: 'glibc' } };

describe('the install key', () => {
  it('stays the same across an `npm version` bump (the app\'s own name and version are not installed)', () => {
    expect(installKey(plan('1.0.1'), env)).toBe(installKey(plan('1.0.0'), env));
  });

  it.each<[string, NpmPlan, InstallEnvironment]>([
    ['the dependencies', plan('1.0.0', { 'tiny-a': '^1.1.0' }), env],
    ['whether install scripts run', plan('1.0.0', undefined, true), env],
    ['the service\'s npmrc', plan('1.0.0'), { ...env, npmrc: Buffer.from('registry=https://npm.internal/\n') }],
    ['the npm version', plan('1.0.0'), { ...env, npm: '11.0.0' }],
    ['the Node ABI', plan('1.0.0'), { ...env, node: { ...env.node, abi: '137' } }],
    ['the C library', plan('1.0.0'), { ...env, node: { ...env.node, libc: 'musl' } }],
    ['the CPU', plan('1.0.0'), { ...env, node: { ...env.node, arch: 'arm64' } }],
  ])('changes with %s', (_what, other, otherEnv) => {
    expect(installKey(other, otherEnv)).not.toBe(installKey(plan('1.0.0'), env));
  });
});
