import type { Client } from '../client.js';
import { connectionArgs, defineCliCommand } from '../command.js';
import type { DeploymentView } from '../deployment.js';
import { CliError, ExitCode, type ExitCodeValue } from '../errors.js';
import { type Io, renderTable, writeJson, writeLine } from '../output.js';

/** `GET /v1/deployments`: newest first. */
interface DeploymentsAnswer {
  deployments: (DeploymentView & { by?: string; createdAt?: string })[];
}

/** The deployment history (pushes, activations, rollbacks, reconciles), newest first, with each one's reason. */
export async function deployments(client: Client, options: { app?: string | undefined; limit?: number | undefined; json?: boolean }, io: Io): Promise<ExitCodeValue> {
  const query = new URLSearchParams();
  if (options.app !== undefined) query.set('app', options.app);
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  const { body } = await client.request<DeploymentsAnswer>('GET', `/v1/deployments${query.size ? `?${query}` : ''}`);
  if (options.json) {
    writeJson(io, body);
    return ExitCode.ok;
  }
  if (body.deployments.length === 0) {
    writeLine(io.out, 'no deployments');
    return ExitCode.ok;
  }
  writeLine(io.out, renderTable(['id', 'created', 'app', 'version', 'kind', 'status', 'by', 'reason'], body.deployments.map((d) => [
    d.id, d.createdAt ?? '', d.app ?? '', d.version ?? '', d.kind ?? '', d.status, d.by ?? '', d.reason ?? '',
  ]), true));
  return ExitCode.ok;
}

export const deploymentsCommand = defineCliCommand({
  meta: { name: 'deployments', description: 'the deployment history, newest first (every app, or one)' },
  args: {
    app: { type: 'positional', description: 'app name (default: all apps)', required: false },
    limit: { type: 'string', description: 'how many (default 50, at most 500)' },
    ...connectionArgs,
  },
  run: (args, ctx) => {
    const limit = args.limit === undefined ? undefined : Number(args.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 500)) throw new CliError('CLI_ERR_USAGE', '--limit takes a whole number from 1 to 500');
    return deployments(ctx.client(args), { app: args.app, limit, json: args.json ?? false }, ctx.io);
  },
});
