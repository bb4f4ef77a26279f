import { readdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Client } from '../../services/cli/client.js';
import { push } from '../../services/cli/commands/push.js';
import { tempDir } from '../helpers/tmp.js';
import { captureIo, writeApp } from './helpers.js';

// `push <dir>` asks the server for the current release's files and keeps the answer: whatever it
// says, the CLI reads only the packed files of the directory, writes only in its cache folder, and
// a file list it cannot use is a clear error, never kept for the next push.

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }

let work: { dir: string; cleanup: () => Promise<void> };
let server: http.Server;
let seen: Seen[];
let answer: unknown;

beforeEach(async () => {
  work = await tempDir('hotdeploy-hostile-list-');
  seen = [];
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET') return void res.end(JSON.stringify(answer));
      res.statusCode = 422;
      res.end(JSON.stringify({ statusCode: 422, code: 'DEPLOY_ERR_DELTA_MISMATCH', message: 'refused by the test' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
  await work.cleanup();
});

async function pushOnce(): Promise<unknown> {
  const dir = await writeApp(path.join(work.dir, 'app'), '1.0.0', 'x');
  const client = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'token');
  return push(client, { source: dir, app: 'demo', version: '2' }, captureIo().io, { HOTDEPLOY_CACHE_DIR: path.join(work.dir, 'cache') })
    .catch((err: unknown) => err);
}

/** The entry paths of a tar stream (512-byte headers, ustar name field). */
function tarPaths(tgz: Buffer): string[] {
  const tar = gunzipSync(tgz);
  const paths: string[] = [];
  for (let at = 0; at + 512 <= tar.length;) {
    const name = tar.subarray(at, at + 100).toString('utf8').replace(/\0.*$/s, '');
    if (name === '') break;
    paths.push(name);
    const size = parseInt(tar.subarray(at + 124, at + 136).toString('utf8').replace(/\0.*$/s, '').trim() || '0', 8);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return paths;
}

const good = { version: '1', manifestSha256: 'a'.repeat(64), links: [] };

it.each<[string, unknown]>([
  ['files that are not an object', { ...good, files: null }],
  ['links that are not a list', { ...good, files: {}, links: 5 }],
  ['a version with a line break (a header it would send back)', { ...good, files: {}, version: '1\r\nx-evil: 1' }],
  ['a digest that is not hex (a header the next push would send)', { ...good, files: {}, manifestSha256: 'a\r\nb' }],
  ['an array', [1, 2]],
])('refuses a file list with %s, sends nothing, and keeps nothing of it', async (_name, list) => {
  answer = list;
  const err = await pushOnce();
  expect(err).toMatchObject({ name: 'CliError', code: 'CLI_ERR_BAD_RESPONSE' });
  expect(seen.map((s) => s.method)).toEqual(['GET']);
  expect(await readdir(path.join(work.dir, 'cache', 'releases')).catch(() => [])).toEqual([]);
});

it('reads only the directory\'s packed files, whatever paths the list names, and writes only in its cache folder', async () => {
  answer = { ...good, files: { '../../outside.txt': 'b'.repeat(64), '/etc/passwd': 'c'.repeat(64), 'index.js': 'd'.repeat(64) }, links: ['../link'] };
  const err = await pushOnce();
  expect(err).toMatchObject({ code: 'DEPLOY_ERR_DELTA_MISMATCH' });
  const [, delta, full] = seen;
  expect(delta?.url).toBe('/v1/apps/demo/releases/2/delta');
  expect(tarPaths(delta!.body).sort()).toEqual(['.hotdeploy/removed.json', 'greeting.js', 'index.js', 'package.json']);
  expect(tarPaths(full!.body).sort()).toEqual(['package/greeting.js', 'package/index.js', 'package/package.json']);
  expect((await readdir(work.dir)).sort()).toEqual(['app', 'cache']);
});
