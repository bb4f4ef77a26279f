import type { Client } from '../client.js';
import { connectionArgs, defineCliCommand, segment } from '../command.js';
import { ExitCode, type ExitCodeValue } from '../errors.js';
import { type Io, writeJson, writeLine } from '../output.js';
import { type AppView, type ReleaseView, renderReleases } from '../views.js';

/** `GET /v1/apps/:app/releases`: the releases with the app's pointers. */
interface ReleasesAnswer extends Pick<AppView, 'current' | 'previous'> {
  releases: ReleaseView[];
}

/** An app's stored releases, marked with its current and previous pointers. */
export async function releases(client: Client, options: { app: string; json?: boolean }, io: Io): Promise<ExitCodeValue> {
  const { body } = await client.request<ReleasesAnswer>('GET', `/v1/apps/${segment(options.app)}/releases`);
  if (options.json) writeJson(io, body);
  else writeLine(io.out, renderReleases(body.releases, body));
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
