import type { ArgsDef } from 'citty';
import { CliError } from './errors.js';

/** The per-deployment flags of push, activate and rollback. */
export const deployChoiceArgs = {
  strategy: { type: 'string', description: 'auto (hot where every worker can, the default) or reload-all (every host reloads)' },
  'allow-unreachable': { type: 'boolean', description: 'hosts whose agent cannot be asked do not fail the deployment; they catch up when back' },
} as const satisfies ArgsDef;

export interface DeployChoices {
  strategy?: string | undefined;
  allowUnreachable?: boolean | undefined;
}

/** The flags as the command's options. */
export function deployChoices(args: { strategy?: string | undefined; 'allow-unreachable'?: boolean | undefined }): DeployChoices {
  return { strategy: args.strategy, allowUnreachable: args['allow-unreachable'] };
}

/** The query string the service reads them from; checked here so a typo is a usage error, not a 400. */
export function choiceQuery(choices: DeployChoices): Record<string, string | undefined> {
  if (choices.strategy !== undefined && choices.strategy !== 'auto' && choices.strategy !== 'reload-all') {
    throw new CliError('CLI_ERR_USAGE', '--strategy must be auto or reload-all');
  }
  return { strategy: choices.strategy, allowUnreachable: choices.allowUnreachable ? 'true' : undefined };
}
