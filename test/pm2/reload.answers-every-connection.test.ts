import http from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { handlerApp } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { push, startHotdeploy, type Hotdeploy } from '../helpers/hotdeploy.js';

// The fallback path's promise, as the hot path's: no request is dropped. A client that opens a new
// connection per request reaches PM2's cluster primary, which hands each connection to a worker; a
// worker that has just closed its server must still be alive to hand such a connection back
// (agent/worker/bootstrap.ts, HANDOFF_LINGER_MS). Four workers and six reloads: 1–3 connections
// went unanswered per run without the linger.

const INSTANCES = 4;
const RELOADS = 6;
const CLIENTS = 4;
/** An answer takes milliseconds; a connection left in the primary is never answered. */
const REQUEST_TIMEOUT_MS = 5_000;

let hd: Hotdeploy;
let port: number;

/** message.js declines its updates, so every new version takes the graceful reload. */
const app = (version: string): Record<string, string | object> =>
  handlerApp({ name: 'api', version, port, instances: INSTANCES, messageJs: `module.hot.decline();\nmodule.exports = ${JSON.stringify(version)};\n` });

beforeAll(async () => {
  hd = await startHotdeploy();
  port = await freePort();
  const first = await push(hd, 'api', '1.0.0', app('1.0.0'));
  expect(first.deployment.status, first.deployment.reason).toBe('succeeded');
}, 60_000);

afterAll(async () => {
  await hd?.close();
}, 60_000);

/** One GET on a new connection: 'ok', or what went wrong ('unanswered' after the timeout). */
function askOnce(): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? 'ok' : `status ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error('unanswered')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

it(`answers every request on a new connection while ${RELOADS} fallback reloads replace ${INSTANCES} workers`, async () => {
  const outcomes = new Map<string, number>();
  let stop = false;
  const clients = Array.from({ length: CLIENTS }, async () => {
    while (!stop) {
      const outcome = await askOnce();
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  });
  try {
    for (let v = 2; v <= RELOADS + 1; v++) {
      const { deployment } = await push(hd, 'api', `${v}.0.0`, app(`${v}.0.0`));
      expect(deployment.status, deployment.reason).toBe('succeeded');
      expect(deployment.hosts[0]?.path).toBe('reload');
    }
  } finally {
    stop = true;
    await Promise.all(clients);
  }
  const { ok = 0, ...failures } = Object.fromEntries(outcomes);
  expect(failures).toEqual({});
  expect(ok).toBeGreaterThan(100);
}, 120_000);
