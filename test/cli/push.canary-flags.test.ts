import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryQuery, push } from '../../services/cli/commands/push.js';
import { tempDir } from '../helpers/tmp.js';
import { captureIo, startTestServer, type TestServer, writeApp } from './helpers.js';

let server: TestServer;
let work: { dir: string; cleanup(): Promise<void> };

beforeAll(async () => {
  server = await startTestServer();
  work = await tempDir('hotdeploy-cli-canary-');
});
afterAll(async () => {
  await server?.close();
  await work?.cleanup();
});

describe('push --canary', () => {
  it('turns the flags into the service\'s query', () => {
    expect(canaryQuery({ canary: '25%', canaryWatch: '2m' })).toEqual({ canary: '25%', canaryWatchMs: '120000' });
    expect(canaryQuery({ canary: '1', canaryWatch: '1.5s' })).toEqual({ canary: '1', canaryWatchMs: '1500' });
    expect(canaryQuery({ canary: '0' })).toEqual({ canary: '0' });
    expect(canaryQuery({ canaryWatch: '45000' })).toEqual({ canaryWatchMs: '45000' });
    expect(canaryQuery({})).toEqual({});
  });

  it.each([
    ['a size that is no number', { canary: 'some' }],
    ['a percentage over 100', { canary: '120%' }],
    ['a watch with no unit it knows', { canary: '1', canaryWatch: '3h' }],
    ['a watch under 100 ms', { canary: '1', canaryWatch: '20ms' }],
    ['a canary without activation', { canary: '1', activate: false }],
  ])('refuses %s before packing or uploading anything (CLI_ERR_USAGE)', async (_name, flags) => {
    const dir = await writeApp(path.join(work.dir, 'app'), '1.0.0');
    const { io } = captureIo();
    await expect(push(server.client(), { source: dir, app: 'hello', ...flags }, io)).rejects.toMatchObject({ code: 'CLI_ERR_USAGE' });
    const { statusCode } = await server.client().request('GET', '/v1/apps/hello').catch((err: { statusCode: number }) => err);
    expect(statusCode).toBe(404);
  });
});
