import type { NatsNames } from '../../../agent/nats/protocol.js';

/** A NATS user's `permissions` block (nats-server configuration), as allow lists. */
export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  /** Answer the requests it receives (its ping) without a right to publish to every inbox. */
  allowResponses?: boolean;
}

/**
 * What one host agent needs, and nothing more: read its own commands (its durable consumer on the
 * command stream, and the acks), answer its ping subject, send replies, read the desired releases,
 * write its own record only, forward its own health reports, and read bundles from the object store. It cannot send commands, move
 * a desired release, write another host's record, or put or delete objects.
 */
export function agentPermissions(names: NatsNames, host: string): NatsPermissions {
  const kv = `KV_${names.kvBucket}`;
  const obj = `OBJ_${names.objBucket}`;
  const durable = names.durable(host);
  return {
    publish: {
      allow: [
        names.replySubject('*'),
        // Its own ping only: `agent --retire` checks that the host's agent is stopped.
        names.pingSubject(host),
        // Its workers' health-window reports, under its own name (the service checks the name too).
        names.healthSubject(host),
        `$KV.${names.kvBucket}.hosts.${host}`,
        '$JS.API.INFO',
        // Stream info: the command stream (is it there), the state bucket (listing keys), the object store.
        `$JS.API.STREAM.INFO.${names.stream}`, `$JS.API.STREAM.INFO.${kv}`, `$JS.API.STREAM.INFO.${obj}`,
        // Its own durable consumer, on its own commands only (the create subject names the filter),
        // then look it up, pull, acknowledge, and delete it on retire.
        `$JS.API.CONSUMER.CREATE.${names.stream}.${durable}.${names.cmdSubject(host)}`,
        `$JS.API.CONSUMER.INFO.${names.stream}.${durable}`, `$JS.API.CONSUMER.MSG.NEXT.${names.stream}.${durable}`,
        `$JS.API.CONSUMER.DELETE.${names.stream}.${durable}`, `$JS.ACK.${names.stream}.${durable}.>`,
        // Reading KV entries and objects (direct gets; ordered consumers over the object's chunks).
        `$JS.API.DIRECT.GET.${kv}.>`, `$JS.API.STREAM.MSG.GET.${kv}`,
        `$JS.API.DIRECT.GET.${obj}.>`, `$JS.API.STREAM.MSG.GET.${obj}`,
        `$JS.API.CONSUMER.CREATE.${obj}.>`, `$JS.API.CONSUMER.DELETE.${obj}.>`, `$JS.API.CONSUMER.INFO.${obj}.>`,
        '$JS.FC.>',
      ],
    },
    subscribe: { allow: [names.pingSubject(host), '_INBOX.>'] },
    allowResponses: true,
  };
}

/** The deploy service: everything under its prefix, and JetStream's API for its stream and buckets. */
export function servicePermissions(names: NatsNames): NatsPermissions {
  return {
    publish: {
      allow: [`${names.prefix}.>`, `$KV.${names.kvBucket}.>`, `$O.${names.objBucket}.>`, '$JS.API.>', '$JS.ACK.>', '$JS.FC.>'],
    },
    subscribe: { allow: [names.replySubject('*'), names.healthSubject('*'), '_INBOX.>'] },
  };
}

/** A `users` entry of nats-server's configuration for these permissions (the README shows the output). */
export function natsUserConfig(user: string, password: string, permissions: NatsPermissions): string {
  const list = (subjects: string[]) => subjects.map((s) => JSON.stringify(s)).join(', ');
  return `{ user: ${JSON.stringify(user)}, password: ${JSON.stringify(password)}, permissions: {
    publish: { allow: [${list(permissions.publish.allow)}] }
    subscribe: { allow: [${list(permissions.subscribe.allow)}] }${permissions.allowResponses ? '\n    allow_responses: true' : ''} } }`;
}
