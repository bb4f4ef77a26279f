import { afterAll, beforeAll, expect, it } from 'vitest';
import type { WorkerState } from '../../agent/messages.js';
import { Client } from '../../services/cli/client.js';
import { activate } from '../../services/cli/commands/activate.js';
import { deployments } from '../../services/cli/commands/deployments.js';
import { ExitCode } from '../../services/cli/errors.js';
import { runCli } from '../../services/cli/run.js';
import { startServer, type RunningServer } from '../../services/server/start-server.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { appFiles, makeBundle } from '../helpers/bundles.js';
import { putBundle } from '../helpers/child-server.js';
import { TOKENS } from '../helpers/server.js';
import { openEvents } from '../helpers/sse.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from '../helpers/tmp.js';
import { captureIo } from './helpers.js';

// `activate` of the release that is already current, while a worker runs another one, becomes a
// `reconcile` deployment, streamed on /v1/events; `hotdeploy deployments` lists it with its reason
// beside the others.

/** A host whose worker runs whatever the test says, whatever it was told to activate. */
class DriftingAgent extends ScriptedAgent {
  runs: string | null = null;
  override async workers(app: string): Promise<WorkerState[]> {
    const [worker] = await super.workers(app);
    return [{ ...worker!, version: this.runs ?? worker!.version }];
  }
}

const agent = new DriftingAgent('h1');
let server: RunningServer;
let client: Client;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const dir = await tempDir('hotdeploy-cli-deployments-');
  cleanup = dir.cleanup;
  server = await startServer({ dataDir: dir.dir, port: 0, localAgent: false, agents: [agent], tokens: [{ name: 'admin', token: TOKENS.admin }], logger: false });
  client = new Client(server.url, TOKENS.admin);
});
afterAll(async () => {
  await server?.close();
  await cleanup?.();
});

it('an activate of the current release with a worker elsewhere is a reconcile, listed with its reason', async () => {
  const pushed = await putBundle(server.url, 'demo', '1.0.0', await makeBundle(appFiles('demo@1.0.0')));
  expect(((await pushed.json()) as { deployment: { status: string } }).deployment.status).toBe('succeeded');
  const first = captureIo();

  // In step: a no-op, as before.
  expect(await activate(client, { app: 'demo', version: '1.0.0' }, first.io)).toBe(ExitCode.ok);
  expect(first.out()).toMatch(/already current/);

  agent.runs = '0.9.0';
  const events = await openEvents<{ type: string; kind: string; status: string }>(Number(new URL(server.url).port), TOKENS.admin);
  const second = captureIo();
  try {
    expect(await activate(client, { app: 'demo', version: '1.0.0' }, second.io)).toBe(ExitCode.ok);
    expect(second.out()).toMatch(/deployment \S+ demo@1\.0\.0: succeeded/);
    await waitFor('the reconcile on the events stream', () => events.frames.some((f) => f.data.type === 'finished' && f.data.kind === 'reconcile'));
  } finally {
    events.close();
  }

  const listed = captureIo();
  expect(await deployments(client, { app: 'demo' }, listed.io)).toBe(ExitCode.ok);
  const rows = listed.out().split('\n').filter((l) => l.includes('demo'));
  expect(rows[0]).toMatch(/reconcile .*succeeded .*admin/);
  expect(rows.some((r) => /push .*succeeded/.test(r))).toBe(true);

  const json = captureIo();
  expect(await runCli(['deployments', 'demo', '--json', '--limit', '1', '--server', server.url, '--token', TOKENS.admin], json.io)).toBe(ExitCode.ok);
  const body = JSON.parse(json.out()) as { deployments: { kind: string; reason: string }[] };
  expect(body.deployments.map((d) => d.kind)).toEqual(['reconcile']);
  expect(body.deployments[0]?.reason).toBe('activate of the current release 1.0.0: hosts differ from it: h1#0 serves 0.9.0');
  const bad = captureIo();
  expect(await runCli(['deployments', '--limit', 'many', '--server', server.url, '--token', TOKENS.admin], bad.io)).toBe(ExitCode.usage);
});
