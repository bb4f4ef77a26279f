import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DASHBOARD_DIR } from '../../services/server/dashboard/assets.js';
import { CONTENT_SECURITY_POLICY } from '../../services/server/dashboard/routes.js';
import { get, testServer, TOKENS, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => { server = await testServer(); });
afterAll(() => server.close());

const root = path.resolve(import.meta.dirname, '../..');

it('GET / is the dashboard page: module scripts and stylesheets of its own, nothing inline', async () => {
  const res = await server.app.inject({ method: 'GET', url: '/' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(res.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
  for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'none'", "require-trusted-types-for 'script'"]) {
    expect(CONTENT_SECURITY_POLICY).toContain(directive);
  }
  expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  const html = res.body;
  const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
  expect(scripts).toEqual(['<script type="module" src="/dashboard/main.js">']);
  expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=|javascript:/i);
  // Every file the page and its modules name is served, with its type.
  const names = new Set([...html.matchAll(/\/dashboard\/([a-z0-9-]+\.[a-z]+)/g)].map((m) => m[1] as string));
  for (const file of await readdir(path.join(root, DASHBOARD_DIR))) {
    if (file.endsWith('.js')) names.add(file);
  }
  for (const name of names) {
    const asset = await server.app.inject({ method: 'GET', url: `/dashboard/${name}` });
    expect(asset.statusCode, name).toBe(200);
    expect(asset.headers['content-type'], name).toMatch(name.endsWith('.js') ? /^text\/javascript/ : name.endsWith('.css') ? /^text\/css/ : /^image\/svg\+xml$/);
    expect(asset.headers['x-content-type-options']).toBe('nosniff');
    const again = await server.app.inject({ method: 'GET', url: `/dashboard/${name}`, headers: { 'if-none-match': asset.headers.etag as string } });
    expect(again.statusCode).toBe(304);
  }
});

it('no module writes markup from strings or evaluates code', async () => {
  for (const file of (await readdir(path.join(root, DASHBOARD_DIR))).filter((f) => f.endsWith('.js'))) {
    const source = await readFile(path.join(root, DASHBOARD_DIR, file), 'utf8');
    expect(source, file).not.toMatch(/\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\b|srcdoc/);
  }
});

it('only the dashboard\'s own files are served under /dashboard/', async () => {
  for (const url of ['/dashboard/nope.js', '/dashboard/..%2F..%2F..%2F..%2Fpackage.json', '/dashboard/%2e%2e%2fassets.ts', '/dashboard/README.md', '/index.html']) {
    const res = await server.app.inject({ method: 'GET', url });
    expect(res.statusCode, url).toBeGreaterThanOrEqual(400);
    expect(res.statusCode, url).toBeLessThan(500);
    expect(res.json().code, url).toMatch(/^DEPLOY_ERR_(ROUTE_NOT_FOUND|VALIDATION)$/);
  }
});

it('HEAD of a file is its GET without the body; other methods find no route, with the same headers', async () => {
  const got = await server.app.inject({ method: 'GET', url: '/dashboard/main.js' });
  const head = await server.app.inject({ method: 'HEAD', url: '/dashboard/main.js' });
  expect([head.statusCode, head.body]).toEqual([200, '']);
  for (const h of ['content-type', 'etag', 'content-security-policy', 'x-content-type-options']) expect(head.headers[h], h).toBe(got.headers[h]);
  expect((await server.app.inject({ method: 'HEAD', url: '/dashboard/..%2Fassets.ts' })).statusCode).toBe(400);
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'PROPFIND'] as const) {
    const res = await server.app.inject({ method: method as 'POST', url: '/dashboard/main.js' });
    expect([res.statusCode, res.json().code], method).toEqual([404, 'DEPLOY_ERR_ROUTE_NOT_FOUND']);
    expect(res.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
  }
});

it('no CORS: a preflight or a request from another origin gets no Access-Control header; API answers carry the same headers', async () => {
  const preflight = await server.app.inject({
    method: 'OPTIONS', url: '/v1/apps/demo/rollback',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
  });
  expect(preflight.statusCode).toBe(404);
  const cross = await server.app.inject({ method: 'GET', url: '/v1/apps', headers: { origin: 'https://evil.example', authorization: `Bearer ${TOKENS.admin}` } });
  expect(cross.statusCode).toBe(200);
  for (const res of [preflight, cross]) {
    expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
  }
});

it('GET /v1/whoami answers any valid token with its name, apps and actions', async () => {
  expect((await get(server.app, '/v1/whoami')).json()).toEqual({ name: 'admin', apps: '*', actions: ['push', 'activate', 'read', 'agent'] });
  expect((await get(server.app, '/v1/whoami', TOKENS.reader)).json()).toEqual({ name: 'reader', apps: '*', actions: ['read'] });
  expect((await get(server.app, '/v1/whoami', TOKENS.ci)).json()).toEqual({ name: 'ci', apps: ['demo'], actions: ['push', 'read'] });
  const none = await server.app.inject({ method: 'GET', url: '/v1/whoami' });
  expect(none.statusCode).toBe(401);
  expect(none.json().code).toBe('DEPLOY_ERR_UNAUTHORIZED');
  expect((await get(server.app, '/v1/whoami', 'not-a-token-at-all')).statusCode).toBe(401);
});

it('the published package carries the dashboard\'s files', async () => {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root });
  const files = new Set((JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  for (const file of await readdir(path.join(root, DASHBOARD_DIR))) expect(files, file).toContain(`${DASHBOARD_DIR}/${file}`);
  expect(files).toContain('dist/services/server/dashboard/routes.js');
});
