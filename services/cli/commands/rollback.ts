import type { Client } from '../client.js';
import { connectionArgs, defineCliCommand, segment } from '../command.js';
import { reportDeployment, type WriteAnswer } from '../deployment.js';
import type { ExitCodeValue } from '../errors.js';
import type { Io } from '../output.js';
import { choiceQuery, deployChoiceArgs, deployChoices, type DeployChoices } from '../deploy-choices.js';

/** `POST /v1/apps/:app/rollback`: back to the previous release, or to `to`. */
export async function rollback(client: Client, options: { app: string; to?: string | undefined; json?: boolean } & DeployChoices,
  io: Io): Promise<ExitCodeValue> {
  const body = options.to === undefined ? {} : { to: options.to };
  const response = await client.request<WriteAnswer>('POST', `/v1/apps/${segment(options.app)}/rollback`, { json: body, query: choiceQuery(options) });
  return reportDeployment(io, options.json ?? false, response.body);
}

export const rollbackCommand = defineCliCommand({
  meta: { name: 'rollback', description: 'make the previous release (or --to V) current again' },
  args: {
    app: { type: 'positional', description: 'app name', required: true },
    to: { type: 'string', description: 'the version to go back to (default: the previous one)' },
    ...deployChoiceArgs,
    ...connectionArgs,
  },
  run: (args, ctx) => rollback(ctx.client(args), { app: args.app, to: args.to, json: args.json ?? false, ...deployChoices(args) }, ctx.io),
});
