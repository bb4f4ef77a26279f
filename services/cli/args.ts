import type { ArgDef, ArgsDef, ParsedArgs } from 'citty';
import { CliError } from './errors.js';

/**
 * A command's arguments parsed against its (citty-shaped) definitions: `--name value`,
 * `--name=value`, `--flag`, `--no-flag`, `--flag=false`, a camelCase spelling of a kebab-case name,
 * positionals in their order, and `--` ending the options. Every mistake is CLI_ERR_USAGE before
 * anything is read or sent: an unknown option (a typo such as `--verison` must not deploy), a
 * string option without its value, a missing required argument, an extra positional.
 *
 * Parsed here rather than by citty, whose ES import of node:util reads every lazy export of that
 * module: ~8 ms of each command's start. citty still renders `--help`.
 */
export function parseCommandArgs<A extends ArgsDef>(argv: readonly string[], defs: A): ParsedArgs<A> {
  const options = new Map<string, ArgDef>();
  const positionals: Array<[string, ArgDef]> = [];
  const out: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === 'positional') positionals.push([name, def]);
    else options.set(kebab(name), def);
    if (def.default !== undefined) out[name] = def.default;
  }
  const keyOf = (spelled: string): string | undefined => {
    const name = kebab(spelled);
    return options.has(name) ? Object.keys(defs).find((key) => kebab(key) === name) : undefined;
  };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const spelled = flag.replace(/^-{1,2}/, '');
    const key = keyOf(spelled);
    const def = key === undefined ? undefined : options.get(kebab(key));
    if (key !== undefined && def?.type === 'boolean') {
      out[key] = inline !== 'false';
      continue;
    }
    if (key !== undefined && def?.type === 'string') {
      const value = inline ?? argv[i + 1];
      if (value === undefined || (inline === undefined && value.startsWith('-') && value !== '-')) {
        throw new CliError('CLI_ERR_USAGE', `${flag} needs a value`);
      }
      if (inline === undefined) i++;
      out[key] = value;
      continue;
    }
    const negated = spelled.startsWith('no-') && inline === undefined ? keyOf(spelled.slice(3)) : undefined;
    if (negated !== undefined && options.get(kebab(negated))?.type === 'boolean') {
      out[negated] = false;
      continue;
    }
    throw new CliError('CLI_ERR_USAGE', `unknown option ${flag}`);
  }
  if (rest.length > positionals.length) throw new CliError('CLI_ERR_USAGE', `unexpected argument ${JSON.stringify(rest[positionals.length])}`);
  positionals.forEach(([name], i) => {
    if (rest[i] !== undefined) out[name] = rest[i];
  });
  for (const [name, def] of Object.entries(defs)) {
    // A positional is required unless it says otherwise (as citty has it); an option only when it says so.
    const required = def.type === 'positional' ? def.required !== false && def.default === undefined : def.required === true;
    if (required && out[name] === undefined) {
      throw new CliError('CLI_ERR_USAGE', def.type === 'positional' ? `missing <${name}>` : `missing --${kebab(name)}`);
    }
  }
  return { ...out, _: rest } as ParsedArgs<A>;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
