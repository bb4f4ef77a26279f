import type { NatsConnection } from '@nats-io/transport-node';

/**
 * Whether the service's NATS connection is up, from the client's own status events. While it is
 * down the client buffers and retries, so an operation would only fail at its timeout; callers ask
 * this first and answer at once (503 DEPLOY_ERR_CLUSTER_UNAVAILABLE) instead.
 */
export class LinkState {
  private down: string | undefined;
  private readonly ups = new Set<() => void>();

  constructor(nc: NatsConnection) {
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') this.down = `disconnected from ${status.server}`;
        else if (status.type === 'reconnect') {
          this.down = undefined;
          this.ups.forEach((listener) => listener());
        }
      }
    })().catch(() => undefined);
    void nc.closed().then(() => {
      this.down = 'the connection is closed';
    });
  }

  /** Calls `listener` each time the connection is back after a loss; returns the undo. */
  onUp(listener: () => void): () => void {
    this.ups.add(listener);
    return () => this.ups.delete(listener);
  }

  /** Why NATS cannot be used now, or undefined when it can. */
  get unavailable(): string | undefined {
    return this.down;
  }
}
