import { EventEmitter } from 'node:events';
import type { AgentEvent, HealthWindowEvent } from '../../agent/messages.js';
import type { Deployment } from './deployments.js';

/** `health-window`: a worker's health window tripped; the event is the auto-rollback deployment's. */
export type DeploymentEventType = 'queued' | 'started' | 'agent' | 'finished' | 'health-window';

/** One server-sent event of `GET /v1/events` (`event: deployment`, `data:` this as JSON). */
export interface DeploymentEvent {
  /**
   * Increases by one per event (the SSE `id:`). It starts at the server's start time in epoch
   * milliseconds, so a restarted server never repeats an id a client saw from the one before.
   */
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
  /** The tripped worker's report, for `health-window` events. */
  health?: HealthWindowEvent;
  /** A canary deployment's canary, on each of its events (a page that missed the record still knows it). */
  canary?: Deployment['canary'];
  /** The whole record, for `finished` events. */
  deployment?: Deployment;
}

/** Events kept for clients resuming with `Last-Event-ID`: at most this many, and at most `REPLAY_BYTES` of JSON. */
export const REPLAY_EVENTS = 1_000;
export const REPLAY_BYTES = 1024 * 1024;

/** An event and its JSON, serialised once for every stream and the replay buffer. */
export interface PublishedEvent {
  event: DeploymentEvent;
  json: string;
}

/**
 * Fans deployment events out to SSE subscribers; a slow subscriber never blocks a deployment.
 * The newest events stay in a bounded buffer, so a client that lost its stream gets what it missed.
 */
export class EventBus {
  private readonly emitter = new EventEmitter();
  private seq = Date.now();
  private readonly recent: PublishedEvent[] = [];
  private recentBytes = 0;

  constructor() {
    // One listener per open SSE stream.
    this.emitter.setMaxListeners(0);
  }

  /** The id of the newest event (the start value when there was none). */
  get lastSeq(): number {
    return this.seq;
  }

  publish(type: DeploymentEventType, deployment: Deployment, agent?: AgentEvent, health?: HealthWindowEvent): DeploymentEvent {
    this.seq += 1;
    const event: DeploymentEvent = {
      seq: this.seq, type, at: new Date().toISOString(), deploymentId: deployment.id, app: deployment.app,
      version: deployment.version, kind: deployment.kind, status: deployment.status,
      ...(agent ? { agent } : {}), ...(health ? { health } : {}), ...(deployment.canary ? { canary: deployment.canary } : {}), ...(type === 'finished' ? { deployment } : {}),
    };
    const published = { event, json: JSON.stringify(event) };
    this.keep(published);
    this.emitter.emit('event', event, published.json);
    return event;
  }

  /** `json` is the event serialised once, for every stream alike. */
  subscribe(listener: (event: DeploymentEvent, json: string) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  /**
   * The events after `lastId`, oldest first; `undefined` when they are not all here any more
   * (evicted from the buffer) or `lastId` is not one of this server's ids (another run's, or a
   * future one): the client must read the current state again instead.
   */
  since(lastId: number): PublishedEvent[] | undefined {
    if (lastId > this.seq) return undefined;
    const first = this.recent[0]?.event.seq ?? this.seq + 1;
    if (lastId < first - 1) return undefined;
    return this.recent.slice(Math.max(0, lastId - first + 1));
  }

  private keep(published: PublishedEvent): void {
    this.recent.push(published);
    this.recentBytes += published.json.length;
    while (this.recent.length > REPLAY_EVENTS || (this.recentBytes > REPLAY_BYTES && this.recent.length > 1)) {
      this.recentBytes -= (this.recent.shift() as PublishedEvent).json.length;
    }
  }
}
