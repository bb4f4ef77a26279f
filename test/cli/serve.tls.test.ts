import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve } from '../../services/cli/commands/serve.js';
import { ExitCode } from '../../services/cli/errors.js';
import { runCli } from '../../services/cli/run.js';
import { CONTENT_SECURITY_POLICY } from '../../services/server/dashboard/routes.js';
import type { RunningServer } from '../../services/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { captureIo } from './helpers.js';
import { cleanEnv, runMain } from './processes.js';

// `hotdeploy serve --tls-cert --tls-key`: the API and the dashboard over HTTPS, with a self-signed
// certificate made here by openssl for 127.0.0.1.

const run = promisify(execFile);
const openssl = await run('openssl', ['version']).then(() => undefined, (err: Error) => `openssl is not installed (${err.message.split('\n')[0]})`);
if (openssl) console.warn(`skipping the TLS tests: ${openssl}`);

/** A self-signed certificate (and key) for 127.0.0.1, valid for a day. */
async function selfSigned(dir: string, name: string): Promise<{ certFile: string; keyFile: string; cert: Buffer }> {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile]);
  return { certFile, keyFile, cert: await readFile(certFile) };
}

/** A GET over HTTPS that trusts `ca` only. */
function fetchTls(url: string, ca: Buffer | undefined, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    https.get(url, { ...(ca ? { ca } : {}), headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    }).on('error', reject);
  });
}

describe.skipIf(openssl !== undefined)('serve --tls-cert --tls-key', () => {
  let work: string;
  let cleanup: () => Promise<void>;
  let running: RunningServer;
  let pair: Awaited<ReturnType<typeof selfSigned>>;
  let output: ReturnType<typeof captureIo>;

  beforeAll(async () => {
    ({ dir: work, cleanup } = await tempDir('hotdeploy-tls-'));
    pair = await selfSigned(work, 'server');
    output = captureIo();
    running = await serve({
      dataDir: path.join(work, 'data'), port: 0, host: '127.0.0.1', localAgent: false,
      tlsCert: pair.certFile, tlsKey: pair.keyFile,
    }, output.io);
  });
  afterAll(async () => {
    await running?.close();
    await cleanup?.();
  });

  it('serves the API and the dashboard over HTTPS only', async () => {
    expect(running.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(output.out()).toContain(`hotdeploy serving on ${running.url}`);
    expect((await fetchTls(`${running.url}/healthz`, pair.cert)).body).toBe('{"status":"ok"}');
    const page = await fetchTls(`${running.url}/`, pair.cert);
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(page.body).toContain('<script type="module" src="/dashboard/main.js">');
    const who = await fetchTls(`${running.url}/v1/whoami`, pair.cert, { authorization: `Bearer ${running.adminToken}` });
    expect(JSON.parse(who.body)).toMatchObject({ name: 'admin' });
    // The certificate is checked (the client trusts only what it is given), and plain HTTP gets nothing.
    await expect(fetchTls(`${running.url}/healthz`, undefined)).rejects.toThrow(/self[- ]signed/i);
    await expect(fetch(`${running.url.replace('https:', 'http:')}/healthz`)).rejects.toThrow();
  });

  it('the CLI talks to it with the certificate trusted through NODE_EXTRA_CA_CERTS', async () => {
    const status = await runMain(['status', '--server', running.url, '--token', running.adminToken as string, '--json'],
      cleanEnv({ NODE_EXTRA_CA_CERTS: pair.certFile }));
    expect(status.stderr).toBe('');
    expect([status.code, JSON.parse(status.stdout)]).toEqual([0, { apps: [] }]);
  });

  it('refuses a missing file, a key of another certificate, or only one of the two flags, before starting', async () => {
    const other = await selfSigned(work, 'other');
    const cases: [string[], number, RegExp][] = [
      [['--tls-cert', pair.certFile, '--tls-key', path.join(work, 'missing.key')], ExitCode.usage, /CLI_ERR_TLS: .*missing\.key: ENOENT/],
      [['--tls-cert', pair.certFile, '--tls-key', other.keyFile], ExitCode.usage, /CLI_ERR_TLS: .*(key values mismatch|mismatch)/i],
      [['--tls-cert', pair.certFile], ExitCode.usage, /CLI_ERR_USAGE: .*--tls-cert and --tls-key go together/],
    ];
    for (const [flags, code, message] of cases) {
      const io = captureIo();
      const exit = await runCli(['serve', '--data-dir', path.join(work, 'refused'), '--port', '0', '--no-local-agent', ...flags], io.io, cleanEnv());
      expect(exit, io.err()).toBe(code);
      expect(io.err()).toMatch(message);
    }
  });
});
