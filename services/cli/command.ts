import type { ArgsDef, CommandMeta, ParsedArgs } from 'citty';
import type { Client } from './client.js';
import { CliError, type ExitCodeValue } from './errors.js';
import type { Io } from './output.js';

/** What a command gets from `run.ts`: where to write, and a client built from the flags and env. */
export interface Context {
  io: Io;
  env: NodeJS.ProcessEnv;
  client(flags: { server?: string | undefined; token?: string | undefined }): Client;
}

/** One CLI command: citty's argument definitions plus a run that returns the exit code (never exits). */
export interface CliCommand<A extends ArgsDef = ArgsDef> {
  meta: CommandMeta & { name: string; description: string };
  args: A;
  run(args: ParsedArgs<A>, ctx: Context): Promise<ExitCodeValue>;
}

/** Keeps each command's argument types precise (citty's `defineCommand` does the same). */
export function defineCliCommand<const A extends ArgsDef>(command: CliCommand<A>): CliCommand<A> {
  return command;
}

/** Flags every command that talks to a server takes (defaults: HOTDEPLOY_SERVER / HOTDEPLOY_TOKEN). */
export const connectionArgs = {
  server: { type: 'string', description: 'deploy service URL (env HOTDEPLOY_SERVER, default http://127.0.0.1:7070)' },
  token: { type: 'string', description: 'bearer token (env HOTDEPLOY_TOKEN)' },
  json: { type: 'boolean', description: 'print the server\'s JSON answer instead of tables' },
} as const satisfies ArgsDef;

/** Path segments are encoded even though the server validates names: a stray `/` must not change the route. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

/** The service's own patterns, checked before packing and uploading rather than after (a 400). */
export function checkName(flag: string, value: string, pattern: string): string {
  if (!new RegExp(pattern).test(value)) throw new CliError('CLI_ERR_USAGE', `${flag} ${JSON.stringify(value)} does not match ${pattern}`);
  return value;
}
