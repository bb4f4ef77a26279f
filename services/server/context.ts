import type { AuditLog } from './audit-log.js';
import type { TokenRegistry } from './auth.js';
import type { Deployments } from './deployments.js';
import type { EventBus } from './events.js';
import type { ServiceMetrics } from './metrics.js';
import type { ResolvedOptions } from './options.js';
import type { Reconciler } from './reconcile.js';
import type { ReleaseStore } from './release-store.js';

/** What the routes share; built once per server by build-server.ts. */
export interface ServiceContext {
  options: ResolvedOptions;
  store: ReleaseStore;
  deployments: Deployments;
  bus: EventBus;
  audit: AuditLog;
  metrics: ServiceMetrics;
  /** Brings hosts that differ from the record back to it (deployments of kind `reconcile`). */
  reconciler: Reconciler;
  /** Filled when the server becomes ready (tokens may come from the data directory). */
  tokens: TokenRegistry;
}
