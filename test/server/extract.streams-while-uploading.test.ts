import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { rawApp, rawTgz } from '../helpers/bundles.js';
import { expectRejected, serverWithRelease, stagedBytes, upload, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

let server: TestServer;
afterEach(() => server.close());

const releaseFile = (version: string, rel: string) => path.join(server.dataDir, 'apps/demo/releases', version, rel);
const fileHashes = async (version: string): Promise<Record<string, string>> =>
  JSON.parse(await readFile(releaseFile(version, '.hotdeploy/files.json'), 'utf8')).files;

/** `body` in `parts` pieces, each written once the previous one was read (the upload trickles in). */
function trickle(body: Buffer, parts: number, gapMs: number): PassThrough {
  const stream = new PassThrough();
  const size = Math.ceil(body.length / parts);
  let at = 0;
  const next = (): void => {
    if (at >= body.length) return void stream.end();
    stream.write(body.subarray(at, at + size));
    at += size;
    setTimeout(next, gapMs);
  };
  next();
  return stream;
}

it('counts extractTimeoutMs only while the unpacker has work, not while the upload is slow', async () => {
  ({ server } = await serverWithRelease({ extractTimeoutMs: 1_500 }));
  const files = Array.from({ length: 40 }, (_, i) => ({ path: `lib/f${i}.js`, body: `exports.i = ${i};\n`.repeat(200) }));
  const body = rawTgz([...rawApp('v2'), ...files]);
  // Eight pieces 400 ms apart: ~3 s of upload, a few ms of unpacking.
  const res = await upload(server.app, 'demo', '2.0.0', trickle(body, 8, 400), { query: '?activate=false' });
  expect(res.statusCode, res.body).toBe(201);
  expect(await readFile(releaseFile('2.0.0', 'lib/f39.js'), 'utf8')).toContain('exports.i = 39;');
  expect(Object.keys(await fileHashes('2.0.0'))).toHaveLength(3 + 40);
});

it('lets a later entry replace an earlier file at the same path (tar\'s rule), and hashes what is on disk', async () => {
  ({ server } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2'), { path: 'lib/twice.js', body: 'first' }, { path: 'lib/twice.js', body: 'second' }]);
  expect((await upload(server.app, 'demo', '2.0.0', body)).statusCode).toBe(201);
  expect(await readFile(releaseFile('2.0.0', 'lib/twice.js'), 'utf8')).toBe('second');
  const twice = (await fileHashes('2.0.0'))['lib/twice.js'];
  const single = rawTgz([...rawApp('v3'), { path: 'lib/twice.js', body: 'second' }]);
  expect((await upload(server.app, 'demo', '3.0.0', single)).statusCode).toBe(201);
  expect((await fileHashes('3.0.0'))['lib/twice.js']).toBe(twice);
});

it('keeps a hard link\'s content and hash when its target is replaced later in the archive', async () => {
  ({ server } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2'), { path: 'a.txt', body: 'old' }, { path: 'b.txt', type: 'Link', linkpath: 'a.txt' },
    { path: 'a.txt', body: 'new' }]);
  expect((await upload(server.app, 'demo', '2.0.0', body)).statusCode).toBe(201);
  expect(await readFile(releaseFile('2.0.0', 'b.txt'), 'utf8')).toBe('old');
  expect(await readFile(releaseFile('2.0.0', 'a.txt'), 'utf8')).toBe('new');
  const hashes = await fileHashes('2.0.0');
  expect(hashes['a.txt']).not.toBe(hashes['b.txt']);
  expect((await stat(releaseFile('2.0.0', 'b.txt'))).size).toBe(3);
});

it('rejects a hard link to a path the archive has not written as a file, and nothing changes', async () => {
  let before;
  ({ server, before } = await serverWithRelease());
  const body = rawTgz([...rawApp('v2'), { path: 'lib/ghost.js', type: 'Link', linkpath: 'lib/missing.js' }]);
  await expectRejected(server, before, await upload(server.app, 'demo', '2.0.0', body), 422, 'DEPLOY_ERR_BAD_ARCHIVE');
});

it('unpacks more uploads at once than it keeps unpackers for', async () => {
  ({ server } = await serverWithRelease());
  const versions = ['2.0.0', '3.0.0', '4.0.0', '5.0.0'];
  const answers = await Promise.all(versions.map((v) => {
    const files = Array.from({ length: 30 }, (_, i) => ({ path: `lib/${v}/f${i}.js`, body: `exports.v = '${v}';` }));
    return upload(server.app, 'demo', v, rawTgz([...rawApp(`demo@${v}`), ...files]), { query: '?activate=false' });
  }));
  expect(answers.map((res) => res.statusCode)).toEqual([201, 201, 201, 201]);
  for (const v of versions) expect(await readFile(releaseFile(v, `lib/${v}/f29.js`), 'utf8')).toBe(`exports.v = '${v}';`);
});

it('reads the gzip magic across pieces: a bundle whose first byte arrives alone is accepted', async () => {
  ({ server } = await serverWithRelease());
  const body = rawTgz(rawApp('v2'));
  const stream = new PassThrough();
  stream.write(body.subarray(0, 1));
  const answer = upload(server.app, 'demo', '2.0.0', stream, { query: '?activate=false' });
  // The rest follows once the first byte reached the staging file: it went to the unpacker on its own.
  await waitFor('the first byte in the staging directory', async () => (await stagedBytes(server.dataDir)) > 0);
  stream.end(body.subarray(1));
  const res = await answer;
  expect(res.statusCode, res.body).toBe(201);
});
