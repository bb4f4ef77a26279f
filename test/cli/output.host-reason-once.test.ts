import { describe, expect, it } from 'vitest';
import type { WorkerReport } from '../../agent/messages.js';
import { printDeployment } from '../../services/cli/deployment.js';
import { prettyLine } from '../../services/cli/log-lines.js';
import { runCli } from '../../services/cli/run.js';
import { renderReleases } from '../../services/cli/views.js';
import { captureIo } from './helpers.js';

const stack = 'SyntaxError: missing ) after argument list\n    at wrapSafe (node:internal/modules/cjs/loader:1469:18)\n    at Module._compile';

function worker(host: string, pmId: number, reason?: string): WorkerReport {
  return { host, pmId, pid: 100 + pmId, version: '1', outcome: 'rolled-back', durationMs: 12, ...(reason ? { reason } : {}) };
}

describe('the CLI says a host\'s reason once', () => {
  it('prints a rolled-back host\'s reason in the deployment line only, not in every worker row', () => {
    const reason = `2 did not start: ${stack}`;
    const { io, out } = captureIo();
    printDeployment(io, {
      id: 'd1', app: 'web', version: '2', status: 'rolled-back', reason: `h1: ${reason}`,
      hosts: [{ host: 'h1', status: 'rolled-back', path: 'reload', reason }],
      workers: [worker('h1', 0, reason), worker('h1', 1, reason)],
    });
    expect(out().match(/missing \)/g)).toHaveLength(1);
    expect(out()).toMatch(/web@2: rolled-back \(h1: 2 did not start: SyntaxError/);
    expect(out()).toMatch(/h1#0\s*│\s*100\s*│\s*rolled-back\s*│\s*12\s*│\s*│/);
  });

  it('gives a succeeded host\'s reason (why it reloaded) its own line, and keeps reasons a worker alone has', () => {
    const { io, out } = captureIo();
    printDeployment(io, {
      id: 'd2', app: 'web', version: '3', status: 'succeeded',
      hosts: [{ host: 'h1', status: 'succeeded', path: 'reload', reason: 'declined: message.js' }],
      workers: [worker('h1', 0, 'declined: message.js'), worker('h1', 1, 'unaccepted: other.js -> index.js')],
    });
    expect(out()).toMatch(/^host h1: reload, succeeded: declined: message\.js$/m);
    expect(out().match(/declined: message\.js/g)).toHaveLength(1);
    expect(out()).toContain('unaccepted: other.js -> index.js');
  });
});

describe('releases', () => {
  it('shows a bad release\'s reason as one short line', () => {
    const table = renderReleases([
      { app: 'web', version: '2', sha256: 'a'.repeat(64), bundleBytes: 1, files: 2, bytes: 3, createdAt: '2025-01-01T00:00:00.000Z', bad: true, badReason: `h1: 2 did not start: ${stack}\n${'x'.repeat(500)}` },
    ], { current: '1', previous: null });
    const row = table.split('\n').find((line) => line.includes('bad:')) ?? '';
    expect(row).toMatch(/bad: h1: 2 did not start: SyntaxError: missing \) after argument list/);
    expect(table).not.toContain('wrapSafe');
    expect(row.length).toBeLessThan(220);
  });
});

describe('hotdeploy --version', () => {
  it('prints the package version and exits 0', async () => {
    const { io, out } = captureIo();
    expect(await runCli(['--version'], io)).toBe(0);
    expect(out()).toMatch(/^hotdeploy \d+\.\d+\.\d+\n$/);
  });
});

describe('serve log lines on a terminal', () => {
  it('turns a pino JSON line into time, level, message and fields', () => {
    const line = JSON.stringify({ level: 30, time: Date.UTC(2025, 0, 1, 12, 4, 5, 120), pid: 1, hostname: 'h', msg: 'deployment finished', app: 'hello', version: '2', reason: 'a b' });
    expect(prettyLine(line)).toBe('12:04:05.120 INFO  deployment finished app=hello version=2 reason="a b"');
  });

  it('puts an error\'s stack below its line, and passes other text through', () => {
    const line = JSON.stringify({ level: 50, time: 0, msg: 'pruning releases failed', err: { message: 'EACCES', stack: 'Error: EACCES\n    at rm (x.js:1:2)' } });
    expect(prettyLine(line)).toBe('00:00:00.000 ERROR pruning releases failed err=EACCES\n    at rm (x.js:1:2)');
    expect(prettyLine('not json')).toBe('not json');
  });
});
