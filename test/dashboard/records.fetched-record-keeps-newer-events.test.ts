import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

// The dashboard's record keeping (plain browser JS, run here as the ES module the page loads): a
// deployment first seen in an event is fetched for its author; the fetch can answer after later
// events (a canary's phases), and must not put the row back to what the record said when read.

interface Phase { name: string; host: string; status: string }
interface Row { id: string; status: string; by: string; finishedAt: string | null; workers: unknown[]; phases?: Phase[]; canary?: unknown }
interface RecordsModule {
  applyEvent: (records: Map<string, Row>, e: Record<string, unknown>) => string;
  fillIn: (records: Map<string, Row>, d: Row) => void;
}

const MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../services/server/dashboard/public/records.js');
const { applyEvent, fillIn } = await import(MODULE) as RecordsModule;

const event = (type: string, status: string, phase?: Phase): Record<string, unknown> => ({
  type, deploymentId: 'd1', app: 'birds', version: '2.0.0', kind: 'push', status, at: '2026-01-01T00:00:00.000Z',
  canary: { size: '1' }, ...(phase ? { agent: { message: phase.name, phase } } : {}),
});
const record = (status: string, finishedAt: string | null): Row => ({
  id: 'd1', status, by: 'admin', finishedAt, workers: [], canary: { size: '1' }, phases: [],
});

it('keeps the status and phases events brought after the fetched record was read, and takes its author', () => {
  const records = new Map<string, Row>();
  expect(applyEvent(records, event('queued', 'queued'))).toBe('unknown');
  applyEvent(records, event('agent', 'running', { name: 'canary', host: 'h', status: 'passed' }));
  applyEvent(records, event('agent', 'running', { name: 'watch', host: 'h', status: 'running' }));
  fillIn(records, record('queued', null));
  expect(records.get('d1')).toMatchObject({ status: 'running', by: 'admin' });
  expect(records.get('d1')?.phases?.map((p) => p.name)).toEqual(['canary', 'watch']);
});

it('takes a finished record whole, and never puts a finished row back to running', () => {
  const records = new Map<string, Row>();
  applyEvent(records, event('queued', 'queued'));
  fillIn(records, record('succeeded', '2026-01-01T00:00:10.000Z'));
  expect(records.get('d1')).toMatchObject({ status: 'succeeded', by: 'admin' });
  fillIn(records, record('running', null));
  expect(records.get('d1')?.status).toBe('succeeded');
});
