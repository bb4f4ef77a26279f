import { EventEmitter } from 'node:events';
import type { AgentEvent } from '../../agent/messages.js';
import type { Deployment } from './deployments.js';

export type DeploymentEventType = 'queued' | 'started' | 'agent' | 'finished';

/** One server-sent event of `GET /v1/events` (`event: deployment`, `data:` this as JSON). */
export interface DeploymentEvent {
  /** Increases by one per event since the server started (the SSE `id:`). */
  seq: number;
  type: DeploymentEventType;
  at: string;
  deploymentId: string;
  app: string;
  version: string;
  kind: Deployment['kind'];
  status: Deployment['status'];
  /** The host agent's progress report, for `agent` events. */
  agent?: AgentEvent;
  /** The whole record, for `finished` events. */
  deployment?: Deployment;
}

/** Fans deployment events out to SSE subscribers; a slow subscriber never blocks a deployment. */
export class EventBus {
  private readonly emitter = new EventEmitter();
  private seq = 0;

  constructor() {
    // One listener per open SSE stream.
    this.emitter.setMaxListeners(0);
  }

  publish(type: DeploymentEventType, deployment: Deployment, agent?: AgentEvent): DeploymentEvent {
    this.seq += 1;
    const event: DeploymentEvent = {
      seq: this.seq, type, at: new Date().toISOString(), deploymentId: deployment.id, app: deployment.app,
      version: deployment.version, kind: deployment.kind, status: deployment.status,
      ...(agent ? { agent } : {}), ...(type === 'finished' ? { deployment } : {}),
    };
    this.emitter.emit('event', event);
    return event;
  }

  subscribe(listener: (event: DeploymentEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
