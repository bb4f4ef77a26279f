import { afterAll, beforeAll, expect, it } from 'vitest';
import { handlerApp } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { push, startHotdeploy } from '../helpers/hotdeploy.js';
import type { Hotdeploy } from '../helpers/hotdeploy.js';

// A release that boots in its trial but dies under PM2 is rolled back to the previous release. When
// the previous release does not come back either, the deployment must not say `rolled-back`: it is
// `failed`, and the reason says the previous release did not come back.

let hd: Hotdeploy;
let port: number;

beforeAll(async () => {
  hd = await startHotdeploy();
  port = await freePort();
});

afterAll(async () => {
  await hd?.close();
});

it('reports failed, not rolled-back, when the previous release does not come back', async () => {
  // 1.0.0 declines its updates: the next release goes the reload path (trial, reload, gate).
  const v1 = handlerApp({ name: 'web', version: '1.0.0', port, messageJs: `module.hot.decline();\nmodule.exports = 'one';\n` });
  expect((await push(hd, 'web', '1.0.0', v1)).deployment.status).toBe('succeeded');
  // 2.0.0 boots in its trial; under PM2 it breaks 1.0.0's entry (beside it in the release store),
  // then dies: the gate fails, and 1.0.0 cannot start any more.
  const v2 = handlerApp({ name: 'web', version: '2.0.0', port, message: 'two', indexJs: `
const fs = require('node:fs');
const path = require('node:path');
if (!process.env.HOTDEPLOY_TRIAL_DIR) {
  fs.writeFileSync(path.join(__dirname, '..', '1.0.0', 'index.js'), 'throw new Error("1.0.0 is gone");\\n');
  setTimeout(() => process.exit(3), 300);
}
module.exports = (req, res) => res.end('{"message":"two","pid":0}');
` });
  const { deployment } = await push(hd, 'web', '2.0.0', v2);
  expect(deployment.status, deployment.reason).toBe('failed');
  expect(deployment.reason).toMatch(/2\.0\.0 did not come up after the reload.*the previous release 1\.0\.0 did not come back either/);
  expect(deployment.workers.every((w) => w.outcome === 'failed')).toBe(true);
}, 90_000);
