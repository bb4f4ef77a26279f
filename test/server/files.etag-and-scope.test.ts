import { afterEach, expect, it } from 'vitest';
import { deployVersion, get, serverWithRelease, TOKENS, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

const withEtag = (url: string, ifNoneMatch: string, token: string = TOKENS.admin) =>
  server.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}`, 'if-none-match': ifNoneMatch } });

it('answers 304 only to the exact ETag: other, weak, listed, unquoted or huge If-None-Match values get the files', async () => {
  ({ server } = await serverWithRelease());
  for (const url of ['/v1/apps/demo/files', '/v1/apps/demo/releases/1.0.0/files']) {
    const etag = (await get(server.app, url)).headers.etag as string;
    expect(etag, url).toMatch(/^"[0-9a-f]{64}"$/);
    expect((await withEtag(url, etag)).statusCode, url).toBe(304);
    for (const odd of ['*', `W/${etag}`, `"x", ${etag}`, etag.slice(1, -1), '""', `"${'0'.repeat(64)}"`, 'x'.repeat(8000)]) {
      const res = await withEtag(url, odd);
      expect(res.statusCode, `${url} ${odd.slice(0, 20)}`).toBe(200);
      expect(res.json().files, url).toBeDefined();
    }
  }
});

it('gives neither list, nor a 304 that confirms an ETag, to a token of another app', async () => {
  ({ server } = await serverWithRelease());
  await deployVersion(server.app, 'other', '1.0.0');
  for (const url of ['/v1/apps/demo/files', '/v1/apps/demo/releases/1.0.0/files', '/v1/apps/nope/files']) {
    const etag = (await get(server.app, url)).headers.etag ?? '"x"';
    const res = await withEtag(url, String(etag), TOKENS.other);
    expect([res.statusCode, res.json().code, res.headers.etag], url).toEqual([403, 'DEPLOY_ERR_FORBIDDEN', undefined]);
  }
  expect((await get(server.app, '/v1/apps/other/files', TOKENS.ci)).statusCode).toBe(403);
  expect((await get(server.app, '/v1/apps/other/files', TOKENS.other)).statusCode).toBe(200);
});
