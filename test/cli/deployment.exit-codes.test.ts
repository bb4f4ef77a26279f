import { describe, expect, it } from 'vitest';
import type { WorkerOutcome, WorkerReport } from '../../agent/messages.js';
import { deploymentExitCode } from '../../services/cli/deployment.js';
import { describeError, ExitCode, ServerError } from '../../services/cli/errors.js';
import { renderWorkers } from '../../services/cli/output.js';

function worker(outcome: WorkerOutcome, reason?: string): WorkerReport {
  return { host: 'h1', pmId: 0, pid: 4242, version: '2', outcome, durationMs: 3.4, ...(reason ? { reason } : {}) };
}

describe('the exit code of a deployment\'s outcome', () => {
  it.each(['hot', 'reloaded', 'started', 'unchanged'] as const)('is 0 when every worker ended %s', (outcome) => {
    expect(deploymentExitCode({ id: 'd', status: 'succeeded', workers: [worker(outcome), worker('hot')] })).toBe(ExitCode.ok);
  });

  it.each(['failed', 'rolled-back'] as const)('is 1 when a worker ended %s', (outcome) => {
    expect(deploymentExitCode({ id: 'd', status: 'succeeded', workers: [worker('hot'), worker(outcome)] })).toBe(ExitCode.deployFailed);
  });

  it.each(['failed', 'rolled-back'] as const)('is 1 when the deployment itself %s', (status) => {
    expect(deploymentExitCode({ id: 'd', status, workers: [] })).toBe(ExitCode.deployFailed);
  });

  it('is 0 for a deployment still queued or running (--no-wait) and for none at all (--no-activate)', () => {
    expect(deploymentExitCode({ id: 'd', status: 'queued' })).toBe(ExitCode.ok);
    expect(deploymentExitCode({ id: 'd', status: 'running', workers: [] })).toBe(ExitCode.ok);
    expect(deploymentExitCode(undefined)).toBe(ExitCode.ok);
  });
});

describe('output of failures', () => {
  it('shows each worker with pid, outcome, rounded ms and reason', () => {
    const table = renderWorkers([worker('hot'), worker('rolled-back', 'health gate: exit 1')]);
    expect(table).toMatch(/worker\s*│\s*pid\s*│\s*outcome\s*│\s*ms\s*│\s*reason/);
    expect(table).toMatch(/h1#0\s*│\s*4242\s*│\s*rolled-back\s*│\s*3\s*│\s*health gate: exit 1/);
  });

  it('server errors are one line with code and status: 4xx exit 4, 5xx exit 5', () => {
    expect(describeError(new ServerError(409, 'DEPLOY_ERR_VERSION_CONFLICT', 'taken'))).toEqual({
      line: 'error DEPLOY_ERR_VERSION_CONFLICT (HTTP 409): taken', exitCode: ExitCode.rejected,
    });
    expect(describeError(new ServerError(500, 'DEPLOY_ERR_STORAGE', 'disk')).exitCode).toBe(ExitCode.internal);
  });

  it('only a CLI bug gets a stack trace', () => {
    const bug = describeError(new TypeError('x is undefined'));
    expect(bug.line).toBe('error CLI_ERR_INTERNAL: x is undefined');
    expect(bug.stack).toContain('TypeError');
    expect(describeError(new ServerError(401, 'DEPLOY_ERR_UNAUTHORIZED', 'no')).stack).toBeUndefined();
  });
});
