import type { ServerOptions } from '../../services/server/options.js';
import { startServer } from '../../services/server/start-server.js';

// argv: dataDir token [options]. The deploy service as `hotdeploy serve` runs it: its own process, with the
// in-process PM2 agent for the daemon of PM2_HOME (set by the parent). SIGTERM closes it. `options`:
// JSON of more ServerOptions (`{ "localAgent": false, "npmrc": "..." }`).
const [dataDir, token, options] = process.argv.slice(2);
if (!dataDir || !token) throw new Error('usage: server-child <dataDir> <token> [options]');
const more = options ? JSON.parse(options) as Partial<ServerOptions> : {};
const server = await startServer({ ...more, dataDir, port: 0, pm2Home: process.env.PM2_HOME, tokens: [{ name: 'admin', token }], logger: false });
process.stdout.write(JSON.stringify({ port: Number(new URL(server.url).port) }) + '\n');
