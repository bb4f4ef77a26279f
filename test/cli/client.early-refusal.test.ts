import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '../../services/cli/client.js';
import { sha256Of } from '../../services/cli/pack.js';
import { tempDir } from '../helpers/tmp.js';

// Servers that refuse an upload on its headers and drop the connection at once, as proxies with a
// body limit do: the reset can reach the client before it reads the answer. These are real sockets;
// the subject is the client's recovery (client.ts: ask again with the headers alone).
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function bigBundle(): Promise<{ file: string; size: number; sha256: string }> {
  const { dir, cleanup } = await tempDir('hotdeploy-client-');
  closers.push(cleanup);
  const file = path.join(dir, 'big.tgz');
  await writeFile(file, randomBytes(8 * 1024 * 1024));
  return { file, size: 8 * 1024 * 1024, sha256: await sha256Of(file) };
}

describe('an upload refused on its headers', () => {
  it('reports the server\'s 413 when the reset swallowed the first answer', async () => {
    let requests = 0;
    const url = await listen((req, res) => {
      requests++;
      // The first answer is lost to the reset (what the race does); the headers-only retry reads it.
      if (requests === 1) return req.socket.resetAndDestroy();
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ statusCode: 413, code: 'DEPLOY_ERR_BUNDLE_TOO_LARGE', message: 'too large' }));
    });
    const upload = await bigBundle();
    await expect(new Client(url, 't').request('PUT', '/v1/apps/a/releases/1', { upload }))
      .rejects.toMatchObject({ name: 'ServerError', statusCode: 413, code: 'DEPLOY_ERR_BUNDLE_TOO_LARGE' });
    expect(requests).toBe(2);
  });

  it('reports the 413 answered before a reset under the body', async () => {
    const url = await listen((req, res) => {
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ statusCode: 413, code: 'DEPLOY_ERR_BUNDLE_TOO_LARGE', message: 'too large' }));
      // Reset rather than drain: unread body bytes make the kernel answer with RST anyway.
      res.on('finish', () => req.socket.resetAndDestroy());
    });
    const upload = await bigBundle();
    await expect(new Client(url, 't').request('PUT', '/v1/apps/a/releases/1', { upload }))
      .rejects.toMatchObject({ name: 'ServerError', statusCode: 413 });
  });

  it('says the upload was cut (CLI_ERR_UPLOAD_CUT) when the server resets without any answer', async () => {
    const url = await listen((req) => {
      req.socket.resetAndDestroy();
    });
    const upload = await bigBundle();
    await expect(new Client(url, 't').request('PUT', '/v1/apps/a/releases/1', { upload }))
      .rejects.toMatchObject({ code: 'CLI_ERR_UPLOAD_CUT' });
  });
});

describe('an answer that does not end', () => {
  it('is cut at 64 MiB with CLI_ERR_BAD_RESPONSE instead of filling the CLI\'s memory', async () => {
    let sent = 0;
    const url = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      const more = (): void => {
        // Until the client goes: it must stop reading well before the server stops writing.
        while (!res.destroyed && sent < 256 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    await expect(new Client(url, 't').request('GET', '/v1/apps/a/files'))
      .rejects.toMatchObject({ code: 'CLI_ERR_BAD_RESPONSE', message: expect.stringMatching(/answered more than 64 MiB/) as unknown });
    expect(sent).toBeLessThan(256 * 1024 * 1024);
  });
});
