import type { Client } from '../client.js';
import { connectionArgs, defineCliCommand, segment } from '../command.js';
import { reportDeployment, type WriteAnswer } from '../deployment.js';
import type { ExitCodeValue } from '../errors.js';
import type { Io } from '../output.js';
import { choiceQuery, deployChoiceArgs, deployChoices, type DeployChoices } from '../deploy-choices.js';

/** `POST /v1/apps/:app/activate`: make a stored release current. */
export async function activate(client: Client, options: { app: string; version: string; json?: boolean } & DeployChoices,
  io: Io): Promise<ExitCodeValue> {
  const response = await client.request<WriteAnswer>('POST', `/v1/apps/${segment(options.app)}/activate`,
    { json: { version: options.version }, query: choiceQuery(options) });
  return reportDeployment(io, options.json ?? false, response.body);
}

export const activateCommand = defineCliCommand({
  meta: { name: 'activate', description: 'make a stored release current' },
  args: {
    app: { type: 'positional', description: 'app name', required: true },
    version: { type: 'positional', description: 'release version', required: true },
    ...deployChoiceArgs,
    ...connectionArgs,
  },
  run: (args, ctx) => activate(ctx.client(args), { app: args.app, version: args.version, json: args.json ?? false, ...deployChoices(args) }, ctx.io),
});
