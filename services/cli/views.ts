import type { WorkerState } from '../../agent/messages.js';
import type { ReleaseMeta } from '../server/release-store.js';
import { firstLine, formatBytes, renderTable } from './output.js';

/**
 * The read side's shapes (`GET /v1/apps/:app` is `{ name, current, previous, releases,
 * workers }`, `current` / `previous` being a version or an object with `version`).
 */
export interface AppView {
  name: string;
  current?: string | { version: string } | null;
  previous?: string | { version: string } | null;
  releases?: number | ReleaseView[];
  workers?: WorkerState[];
}

/**
 * A stored release as the service sends it: its ReleaseMeta (a type-only import, nothing loaded),
 * with the fields an older server may leave out made optional.
 */
export type ReleaseView = Omit<ReleaseMeta, 'createdBy' | 'bad' | 'manifest'>
  & Partial<Pick<ReleaseMeta, 'createdBy' | 'bad' | 'manifest'>>;

export function versionOf(pointer: AppView['current']): string {
  if (pointer === null || pointer === undefined) return '-';
  return typeof pointer === 'string' ? pointer : pointer.version;
}

function releaseCount(releases: AppView['releases']): number | string {
  if (releases === undefined) return '-';
  return typeof releases === 'number' ? releases : releases.length;
}

/** A list answer, bare or wrapped (`{ apps: [...] }`, `{ releases: [...] }`). */
export function listOf<T>(body: unknown, key: string): T[] {
  if (Array.isArray(body)) return body as T[];
  const wrapped = (body as Record<string, unknown> | null)?.[key];
  return Array.isArray(wrapped) ? (wrapped as T[]) : [];
}

export function renderApps(apps: AppView[]): string {
  if (apps.length === 0) return 'no apps yet: `hotdeploy push <dir> --app NAME` creates one';
  return renderTable(['app', 'current', 'previous', 'releases'], apps.map((a) => [
    a.name, versionOf(a.current), versionOf(a.previous), releaseCount(a.releases),
  ]));
}

export function renderWorkerStates(workers: WorkerState[]): string {
  if (workers.length === 0) return 'no workers run this app on any attached host';
  return renderTable(['worker', 'pid', 'version', 'status', 'last outcome'], workers.map((w) => [
    `${w.host}#${w.pmId}`, w.pid ?? '-', w.version ?? '-', w.status, w.lastOutcome ?? '',
  ]));
}

export function renderReleases(releases: ReleaseView[], pointers: Pick<AppView, 'current' | 'previous'>): string {
  if (releases.length === 0) return 'no releases';
  const current = versionOf(pointers.current);
  const previous = versionOf(pointers.previous);
  const mark = (r: ReleaseView) =>
    r.version === current ? 'current' : r.version === previous ? 'previous' : r.bad ? `bad: ${firstLine(r.badReason ?? 'rolled back')}`
      : r.live === false ? 'never live' : '';
  return renderTable(['version', 'sha256', 'files', 'unpacked', 'created', 'by', ''], releases.map((r) => [
    r.version, r.sha256.slice(0, 12), r.files, formatBytes(r.bytes), r.createdAt, r.createdBy ?? '-', mark(r),
  ]));
}
