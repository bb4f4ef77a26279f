import { parseCommandArgs } from './args.js';
import { util } from './builtins.js';
import { clientFrom } from './client.js';
import type { CliCommand, Context } from './command.js';
import { CliError, describeError, ExitCode, type ExitCodeValue } from './errors.js';
import { type Io, writeLine } from './output.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each command keeps its own precise args type
type AnyCommand = CliCommand<any>;

/**
 * Each command is imported when it runs: `serve` and `agent` load fastify and PM2 (hundreds of
 * milliseconds), which a `push` never needs before its first byte is sent.
 */
const commands: Record<string, () => Promise<AnyCommand>> = {
  serve: async () => (await import('./commands/serve.js')).serveCommand,
  push: async () => (await import('./commands/push.js')).pushCommand,
  plan: async () => (await import('./commands/plan.js')).planCommand,
  rollback: async () => (await import('./commands/rollback.js')).rollbackCommand,
  activate: async () => (await import('./commands/activate.js')).activateCommand,
  status: async () => (await import('./commands/status.js')).statusCommand,
  releases: async () => (await import('./commands/releases.js')).releasesCommand,
  deployments: async () => (await import('./commands/deployments.js')).deploymentsCommand,
  agent: async () => (await import('./commands/agent.js')).agentCommand,
};

/** Runs one CLI invocation in-process and returns its exit code; `main.ts` is the only caller that exits. */
export async function runCli(argv: string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<ExitCodeValue> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      writeLine(io.out, await topUsage());
      return name === undefined ? ExitCode.usage : ExitCode.ok;
    }
    if (name === '--version' || name === '-v' || name === 'version') {
      const { ownVersion } = await import('../../agent/common/package-files.js');
      writeLine(io.out, `hotdeploy ${ownVersion()}`);
      return ExitCode.ok;
    }
    const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
    const command = load && (await load());
    if (!command) throw new CliError('CLI_ERR_USAGE', `unknown command ${JSON.stringify(name)}; run \`hotdeploy --help\``);
    if (rest.includes('--help') || rest.includes('-h')) {
      const { renderUsage } = await import('citty');
      const usage = await renderUsage({ meta: command.meta, args: command.args }, { meta: { name: 'hotdeploy' } });
      // citty colours its usage unless NO_COLOR / CI is set; piped help should be plain text.
      writeLine(io.out, io.out.isTTY ? usage : util.stripVTControlCharacters(usage));
      return ExitCode.ok;
    }
    const args = parseCommandArgs(rest, command.args);
    const context: Context = { io, env, client: (flags) => clientFrom(flags, env) };
    return await command.run(args, context);
  } catch (err) {
    const { line, exitCode, stack } = describeError(err);
    writeLine(io.err, line);
    if (stack) writeLine(io.err, stack);
    return exitCode;
  }
}

async function topUsage(): Promise<string> {
  const loaded = await Promise.all(Object.values(commands).map((load) => load()));
  const lines = loaded.map((c) => `  ${c.meta.name.padEnd(10)} ${c.meta.description}`);
  return [
    'hotdeploy: hot deploys of Node.js apps to PM2 workers',
    '',
    'Usage: hotdeploy <command> [options]   (hotdeploy <command> --help for its options; hotdeploy --version)',
    '',
    'Commands:',
    ...lines,
    '',
    'Environment: HOTDEPLOY_SERVER (default http://127.0.0.1:7070), HOTDEPLOY_TOKEN',
  ].join('\n');
}
