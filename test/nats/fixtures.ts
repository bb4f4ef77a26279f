import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { makeBundle } from '../helpers/bundles.js';
import { upload } from '../helpers/server.js';

/**
 * The app the cluster tests deploy: `message.js` says which version runs. With `declineOn`, that
 * module declines updates on the host whose data directory (so release path) has that name in it:
 * the same bundle, one host that cannot take the next release hot.
 */
export function clusterApp(version: string, options: { declineOn?: string; throwOn?: string; port?: number } = {}): Record<string, string | object> {
  const decline = options.declineOn ? `if (__dirname.includes(${JSON.stringify(options.declineOn)})) module.hot.decline();\n` : '';
  const fail = options.throwOn ? `if (__dirname.includes(${JSON.stringify(options.throwOn)})) throw new Error('no start here');\n` : '';
  return {
    'package.json': { name: 'demo', version: '1.0.0', main: 'index.js', hotdeploy: { instances: 1, ...(options.port ? { port: options.port } : {}) } },
    'index.js': `${fail}const message = require('./message.js');
module.exports = (req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ message, pid: process.pid }));
};
`,
    'message.js': `${decline}module.exports = ${JSON.stringify(`demo@${version}`)};\n`,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
export async function push(app: FastifyInstance, version: string, files: Record<string, string | object>, query = ''): Promise<any> {
  const res = await upload(app, 'demo', version, await makeBundle(files), { query });
  expect([201, 200, 202], res.body).toContain(res.statusCode);
  return res.json();
}
