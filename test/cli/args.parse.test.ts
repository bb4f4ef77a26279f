import { describe, expect, it } from 'vitest';
import { parseCommandArgs } from '../../services/cli/args.js';
import { CliError } from '../../services/cli/errors.js';

const defs = {
  source: { type: 'positional', description: 'dir', required: true },
  app: { type: 'string', description: 'app', required: true },
  version: { type: 'string', description: 'version' },
  activate: { type: 'boolean', default: true, description: 'activate' },
  'npm-pack': { type: 'boolean', default: false, description: 'npm pack' },
  'canary-watch': { type: 'string', description: 'watch' },
} as const;

function usageError(argv: string[]): string {
  try {
    parseCommandArgs(argv, defs);
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).code).toBe('CLI_ERR_USAGE');
    return (err as CliError).message;
  }
  throw new Error(`${argv.join(' ')} parsed`);
}

describe('command arguments', () => {
  it('reads values both ways, booleans, their negations and defaults, camelCase spellings and positionals', () => {
    expect(parseCommandArgs(['dir', '--app', 'hello', '--version=1.2.3'], defs)).toMatchObject({
      source: 'dir', app: 'hello', version: '1.2.3', activate: true, 'npm-pack': false, _: ['dir'],
    });
    expect(parseCommandArgs(['--no-activate', '--npm-pack', '--app=a', 'dir'], defs)).toMatchObject({ activate: false, 'npm-pack': true, source: 'dir' });
    expect(parseCommandArgs(['dir', '--app', 'a', '--activate=false', '--npmPack', '--canaryWatch', '30s'], defs))
      .toMatchObject({ activate: false, 'npm-pack': true, 'canary-watch': '30s' });
    // The last of a repeated option wins; a value may hold `=`; `-` alone is a value; `--` ends the options.
    expect(parseCommandArgs(['dir', '--app', 'a', '--app', 'b', '--version', 'x=y'], defs)).toMatchObject({ app: 'b', version: 'x=y' });
    expect(parseCommandArgs(['--app', '-', '--', '--dir-with-dashes'], defs)).toMatchObject({ app: '-', source: '--dir-with-dashes' });
  });

  it('refuses unknown options, missing values, missing required arguments and extra positionals', () => {
    expect(usageError(['dir', '--app', 'a', '--verison', '2'])).toBe('invalid arguments: unknown option --verison');
    expect(usageError(['dir', '--app', 'a', '-v'])).toBe('invalid arguments: unknown option -v');
    // A negation of what is not a boolean flag is unknown too.
    expect(usageError(['dir', '--app', 'a', '--no-version'])).toBe('invalid arguments: unknown option --no-version');
    expect(usageError(['dir', '--app'])).toBe('invalid arguments: --app needs a value');
    expect(usageError(['dir', '--app', '--npm-pack'])).toBe('invalid arguments: --app needs a value');
    expect(usageError(['dir'])).toBe('invalid arguments: missing --app');
    expect(usageError(['--app', 'a'])).toBe('invalid arguments: missing <source>');
    expect(usageError(['dir', 'other', '--app', 'a'])).toBe('invalid arguments: unexpected argument "other"');
  });
});
