import { NATS_SERVER_MISSING, natsServerBinary } from './nats-server.js';

/** Runs once per `vitest run`, before any test file: what the whole run lacks, said once. */
export default function setup(): void {
  if (natsServerBinary === undefined) console.warn(`\n${NATS_SERVER_MISSING}\n`);
}
