import { expect, it } from 'vitest';
import { parseFastifyStart, withEnv } from '../../agent/runtime/fastify-cli.js';

it('reads fastify start from a script, wherever it stands in it', () => {
  expect(parseFastifyStart('npm run build:ts && fastify start -l info dist/app.js')).toMatchObject({ file: 'dist/app.js', logLevel: 'info' });
  expect(parseFastifyStart('NODE_ENV=production npx fastify start --log-level=warn --port 4000 ./app.js')).toMatchObject({ file: 'app.js', logLevel: 'warn', port: 4000 });
  expect(parseFastifyStart('node_modules/.bin/fastify start -wP app.js')).toMatchObject({ file: 'app.js', prettyLogs: true, ignored: ['--watch'] });
  expect(parseFastifyStart('node server.js')).toBeUndefined();
  expect(parseFastifyStart('fastify generate app')).toBeUndefined();
  expect(parseFastifyStart('fastify start -l info')).toBeUndefined();
});

it('fills what the script leaves out from FASTIFY_* variables, never what it says', () => {
  const start = parseFastifyStart('fastify start -l info app.js')!;
  expect(withEnv(start, { FASTIFY_LOG_LEVEL: 'debug', FASTIFY_OPTIONS: 'true', FASTIFY_PREFIX: '/v1', FASTIFY_PLUGIN_TIMEOUT: '500', FASTIFY_TRUST_PROXY_ENABLED: 'true' }))
    .toMatchObject({ logLevel: 'info', options: true, prefix: '/v1', pluginTimeout: 500, trustProxy: true });
});
