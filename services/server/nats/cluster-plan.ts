import type { ActivationRequest, HostPlan } from '../../../agent/messages.js';
import { objectName, publishBundle } from '../../../agent/nats/bundles.js';
import type { ReleaseRef } from '../../../agent/nats/protocol.js';
import type { ClusterResources } from '../../../agent/nats/resources.js';
import { natsStep, sendAll } from './host-commands.js';
import { Replies } from './replies.js';
import { rollCall } from './roll-call.js';

/** A dry run across hosts: one plan per host that answered, and why each other host did not. */
export interface ClusterPlan {
  hosts: HostPlan[];
  unplanned: { host: string; reason: string }[];
}

/**
 * `hotdeploy plan` on `hosts` (those that run the app): each is pinged, the bundle (`bundle.file`)
 * goes to the object store unless a stored release already put it there, each host that can be
 * asked answers a prepare marked dry run, and the object is deleted after.
 */
export async function dryRun(resources: ClusterResources, hosts: string[], request: ActivationRequest, bundle: { file: string; sha256: string },
  timeouts: { pingTimeoutMs: number; prepareTimeoutMs: number }): Promise<ClusterPlan> {
  const { prepareTimeoutMs } = timeouts;
  const absent = await rollCall(resources, hosts, timeouts.pingTimeoutMs);
  const unplanned = [...absent].map(([host, why]) => ({ host, reason: `unreachable: ${why}` }));
  const reachable = hosts.filter((h) => !absent.has(h));
  if (reachable.length === 0) return { hosts: [], unplanned };
  // A stored release's object is read as it is; otherwise the dry run's own object, never a release's name.
  const stored = objectName(request.app, bundle.sha256);
  const reuse = (await natsStep(resources.bundles.info(stored))) !== null;
  const object = reuse ? stored : `${request.app}/plan/${request.deploymentId}.tgz`;
  const ref: ReleaseRef = { app: request.app, version: request.version, sha256: bundle.sha256, object, manifest: request.manifest, kind: request.kind };
  const replies = new Replies(resources.nc, resources.names.replySubject(request.deploymentId));
  try {
    if (!reuse) await natsStep(publishBundle(resources.bundles, ref, bundle.file));
    await sendAll(resources, reachable, { type: 'prepare', deploymentId: request.deploymentId, release: ref, expiresAt: Date.now() + prepareTimeoutMs, dryRun: true });
    const answers = await replies.collect(['prepared', 'prepare-failed'], reachable, prepareTimeoutMs);
    const plans: HostPlan[] = [];
    for (const host of reachable) {
      const answer = answers.get(host);
      if (answer?.type === 'prepared') plans.push({ ...answer.plan, host });
      else unplanned.push({ host, reason: answer ? `the dry run failed: ${answer.reason}` : `no answer within ${prepareTimeoutMs} ms` });
    }
    return { hosts: plans, unplanned: unplanned.sort((a, b) => (a.host < b.host ? -1 : 1)) };
  } finally {
    replies.close();
    if (!reuse) await resources.bundles.delete(object).catch(() => undefined);
  }
}
