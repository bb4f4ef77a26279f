import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterEach, expect, it } from 'vitest';
import { rawApp, rawTar } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, upload, type TestServer } from '../helpers/server.js';

let server: TestServer;
afterEach(() => server.close());

it('stops a small .tgz that unpacks past maxUnpackedBytes before writing it', async () => {
  let before;
  ({ server, before } = await serverWithRelease({ maxUnpackedBytes: 1024 * 1024 }));
  // 64 MB of zeros in one entry: about 64 KB compressed.
  const tar = rawTar([...rawApp('v2'), { path: 'zeros.bin', body: Buffer.alloc(64 * 1024 * 1024) }]);
  const body = gzipSync(tar, { level: 9 });
  expect(body.length).toBeLessThan(200_000);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 413, 'DEPLOY_ERR_UNPACKED_TOO_LARGE');
});

it('counts the total, not each file (incompressible data: node-tar\'s ratio check cannot be what stops it)', async () => {
  let before;
  ({ server, before } = await serverWithRelease({ maxUnpackedBytes: 100_000 }));
  const files = Array.from({ length: 10 }, (_, i) => ({ path: `data/${i}.bin`, body: randomBytes(20_000) }));
  const body = gzipSync(rawTar([...rawApp('v2'), ...files]));
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 413, 'DEPLOY_ERR_UNPACKED_TOO_LARGE');
});

it('stops zeros after the archive\'s end (which tar reads past) once the stream outgrows the limits', async () => {
  let before;
  ({ server, before } = await serverWithRelease({ maxUnpackedBytes: 1024 * 1024, maxFiles: 100 }));
  // A valid archive, then 64 MB of zeros: no entry is too large, only the tar stream is.
  const body = gzipSync(Buffer.concat([rawTar(rawApp('v2')), Buffer.alloc(64 * 1024 * 1024)]), { level: 9 });
  expect(body.length).toBeLessThan(200_000);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 413, 'DEPLOY_ERR_UNPACKED_TOO_LARGE');
});
