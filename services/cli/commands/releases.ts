import type { Client } from '../client.js';
import { connectionArgs, defineCliCommand, segment } from '../command.js';
import { ExitCode, type ExitCodeValue } from '../errors.js';
import { type Io, writeJson, writeLine } from '../output.js';
import { type AppView, listOf, type ReleaseView, renderReleases } from '../views.js';

/** `GET /v1/apps/:app/releases`, marked with the app's current and previous pointers. */
export async function releases(client: Client, options: { app: string; json?: boolean }, io: Io): Promise<ExitCodeValue> {
  const { body } = await client.request('GET', `/v1/apps/${segment(options.app)}/releases`);
  if (options.json) {
    writeJson(io, body);
    return ExitCode.ok;
  }
  const app = await client.request<AppView>('GET', `/v1/apps/${segment(options.app)}`);
  writeLine(io.out, renderReleases(listOf<ReleaseView>(body, 'releases'), app.body));
  return ExitCode.ok;
}

export const releasesCommand = defineCliCommand({
  meta: { name: 'releases', description: 'an app\'s stored releases' },
  args: {
    app: { type: 'positional', description: 'app name', required: true },
    ...connectionArgs,
  },
  run: (args, ctx) => releases(ctx.client(args), { app: args.app, json: args.json ?? false }, ctx.io),
});
