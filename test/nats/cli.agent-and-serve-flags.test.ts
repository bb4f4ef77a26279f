import { expect, it } from 'vitest';
import { ExitCode } from '../../services/cli/errors.js';
import { clusterOptions } from '../../services/cli/commands/serve.js';
import { runCli } from '../../services/cli/run.js';
import { captureIo } from '../cli/helpers.js';
import { freePort } from '../helpers/ports.js';

it('agent without --nats is a usage error', async () => {
  const { io, err } = captureIo();
  expect(await runCli(['agent', '--name', 'h1'], io, {})).toBe(ExitCode.usage);
  expect(err()).toContain('error CLI_ERR_USAGE: invalid arguments: agent needs --nats URL');
});

it('agent with NATS unreachable exits "unreachable", naming the server, before any PM2 is started', async () => {
  const port = await freePort();
  const { io, err } = captureIo();
  expect(await runCli(['agent', '--nats', `nats://127.0.0.1:${port}`, '--name', 'h1'], io, {})).toBe(ExitCode.unreachable);
  expect(err()).toMatch(new RegExp(`error CLI_ERR_UNREACHABLE: .*the NATS server is not reachable: nats://127.0.0.1:${port}`));
});

it('agent refuses a host name that cannot be a subject token', async () => {
  const { io, err } = captureIo();
  expect(await runCli(['agent', '--nats', `nats://127.0.0.1:${await freePort()}`, '--name', 'a.b'], io, {})).toBe(ExitCode.usage);
  expect(err()).toContain('host name "a.b" must match');
});

it('serve --strategy only takes auto or reload-all', async () => {
  const { io, err } = captureIo();
  expect(await runCli(['serve', '--nats', `nats://127.0.0.1:${await freePort()}`, '--strategy', 'fast'], io, {})).toBe(ExitCode.usage);
  expect(err()).toContain('--strategy must be auto or reload-all');
});

it('serve takes the prepare and apply deadlines of a NATS deployment as flags, in ms', () => {
  const flags = { nats: 'nats://127.0.0.1:4222', 'prepare-timeout': '5000', 'apply-timeout': '30000', strategy: 'reload-all' };
  expect(clusterOptions(flags, {})).toEqual({ nats: { servers: ['nats://127.0.0.1:4222'] }, strategy: 'reload-all', prepareTimeoutMs: 5_000, applyTimeoutMs: 30_000 });
  expect(() => clusterOptions({ ...flags, 'prepare-timeout': '5s' }, {})).toThrow('--prepare-timeout must be an integer from 100 to 3600000');
  expect(() => clusterOptions({ ...flags, 'apply-timeout': '0' }, {})).toThrow('--apply-timeout must be an integer');
});
