import { expect, it } from 'vitest';
import { ExitCode } from '../../services/cli/errors.js';
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
