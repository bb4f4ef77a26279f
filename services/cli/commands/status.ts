import type { Client } from '../client.js';
import { connectionArgs, defineCliCommand, segment } from '../command.js';
import { ExitCode, type ExitCodeValue } from '../errors.js';
import { type Io, writeJson, writeLine } from '../output.js';
import { type AppView, listOf, renderApps, renderWorkerStates, versionOf } from '../views.js';

/** `GET /v1/apps` (every app) or `GET /v1/apps/:app` (one app and its workers). */
export async function status(client: Client, options: { app?: string | undefined; json?: boolean },
  io: Io): Promise<ExitCodeValue> {
  if (options.app === undefined) {
    const { body } = await client.request('GET', '/v1/apps');
    if (options.json) writeJson(io, body);
    else writeLine(io.out, renderApps(listOf<AppView>(body, 'apps')));
    return ExitCode.ok;
  }
  const { body } = await client.request<AppView>('GET', `/v1/apps/${segment(options.app)}`);
  if (options.json) {
    writeJson(io, body);
    return ExitCode.ok;
  }
  writeLine(io.out, `${body.name}: current ${versionOf(body.current)}, previous ${versionOf(body.previous)}`);
  writeLine(io.out, renderWorkerStates(body.workers ?? []));
  return ExitCode.ok;
}

export const statusCommand = defineCliCommand({
  meta: { name: 'status', description: 'every app, or one app\'s current release and workers' },
  args: {
    app: { type: 'positional', description: 'app name (default: all apps)', required: false },
    ...connectionArgs,
  },
  run: (args, ctx) => status(ctx.client(args), { app: args.app, json: args.json ?? false }, ctx.io),
});
