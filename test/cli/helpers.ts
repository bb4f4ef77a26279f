import { Writable } from 'node:stream';
import path from 'node:path';
import * as tar from 'tar';
import { startServer, type TokenConfig } from '../../services/server/index.js';
import { Client } from '../../services/cli/client.js';
import type { Io } from '../../services/cli/output.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

export const ADMIN = 'test-admin-token';
export const READER = 'test-reader-token';
export const OTHER_APP = 'test-other-app-token';

const TOKENS: TokenConfig[] = [
  { name: 'admin', token: ADMIN },
  { name: 'reader', token: READER, actions: ['read'] },
  { name: 'other', token: OTHER_APP, apps: ['other'] },
];

export interface TestServer {
  url: string;
  dir: string;
  client(token?: string): Client;
  close(): Promise<void>;
}

/** A real deploy service on port 0 without the PM2 agent (deployments complete with zero workers). */
export async function startTestServer(limits: { maxBundleBytes?: number } = {}): Promise<TestServer> {
  const { dir, cleanup } = await tempDir('hotdeploy-cli-');
  const running = await startServer({
    dataDir: path.join(dir, 'data'), port: 0, localAgent: false, tokens: TOKENS, logger: false, ...limits,
  });
  return {
    url: running.url,
    dir,
    client: (token = ADMIN) => new Client(running.url, token),
    close: async () => {
      await running.close();
      await cleanup();
    },
  };
}

/** The handler-mode app the tests push; `greeting` changes its bytes. */
export async function writeApp(dir: string, version: string, greeting = 'hello'): Promise<string> {
  await writeTree(dir, {
    'package.json': { name: 'hello', version, main: 'index.js', files: ['index.js', 'greeting.js'], hotdeploy: { port: 3000 } },
    'index.js': "const { greeting } = require('./greeting');\nmodule.exports = (req, res) => res.end(greeting());\n",
    'greeting.js': `exports.greeting = () => ${JSON.stringify(greeting)};\n`,
    'notes.txt': 'not part of the bundle',
  });
  return dir;
}

/** A .tgz laid out the way `npm pack` makes it (`package/` top-level folder), built with `tar`. */
export async function writeTgz(dir: string, version: string, greeting = 'hello'): Promise<string> {
  await writeApp(path.join(dir, 'package'), version, greeting);
  const file = path.join(dir, `hello-${version}.tgz`);
  await tar.c({ gzip: true, file, cwd: dir }, ['package']);
  return file;
}

/** Output streams that keep what was written; `tty` makes them claim to be a terminal. */
export function captureIo(tty = false): { io: Io; out(): string; err(): string } {
  const sink = () => {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        chunks.push(chunk.toString());
        callback();
      },
    });
    return { stream: Object.assign(stream, tty ? { isTTY: true, columns: 100 } : {}), text: () => chunks.join('') };
  };
  const out = sink();
  const err = sink();
  return { io: { out: out.stream, err: err.stream }, out: out.text, err: err.text };
}
