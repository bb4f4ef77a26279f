import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { hostApp } from '../../agent/runtime/host-app.js';
import { listen } from '../../agent/worker/http-server.js';
import { generateApp } from '../app-gen.js';
import { ReleaseFarm } from '../releases.js';
import { tempDir } from '../tmp.js';

// argv: bare|hosted modules. Figure 4: the same generated app, served by a plain
// http.createServer(handler) or by the worker's own server through HostedApp.handler.
const mode = process.argv[2];
const modules = Number(process.argv[3]);
const { dir: root, cleanup } = await tempDir('hd-bench-serve-');
const dir = await new ReleaseFarm(root).write(generateApp({ modules, marker: 'm-0' }));
let port: number;
if (mode === 'bare') {
  const handler = createRequire(import.meta.url)(path.join(dir, 'index.js')) as http.RequestListener;
  const server = http.createServer(handler);
  // Bound like the worker's own server (agent/worker/http-server.ts: no host, so `::` dual-stack).
  await new Promise<void>((resolve) => server.listen(0, resolve));
  port = (server.address() as { port: number }).port;
} else if (mode === 'hosted') {
  const app = await hostApp({ name: 'bench', dir, mode: 'handler' });
  port = (await listen(app.handler, 0)).port;
} else {
  throw new Error(`unknown mode ${mode}`);
}
process.on('SIGTERM', () => void cleanup().finally(() => process.exit(0)));
process.stdout.write(JSON.stringify({ port }) + '\n');
