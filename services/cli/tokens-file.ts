import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { TokenAction, TokenConfig } from '../server/options.js';
import { APP_PATTERN } from '../server/schemas.js';
import { CliError } from './errors.js';

const ACTIONS: readonly TokenAction[] = ['push', 'activate', 'read', 'agent'];
const KEYS = new Set(['name', 'token', 'sha256', 'apps', 'actions']);
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A plain token shorter than this is guessable; `hd_` + 43 base64url characters is what serve makes. */
export const MIN_TOKEN_LENGTH = 16;

export interface TokensFile {
  tokens: TokenConfig[];
  /** Plain tokens in a file others can read: worth a warning, not a refusal. */
  readableByOthers: boolean;
}

/**
 * `serve --tokens FILE`: `[{ "name", "token" | "sha256", "apps"?, "actions"? }]`, checked whole
 * before the service starts, so a typo (`"app"`, `"deploy"`) is a start-up error naming the entry,
 * never a token that silently covers more or less than meant.
 */
export async function readTokensFile(file: string): Promise<TokensFile> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw invalid(file, `cannot be read (${err.code ?? err.message})`);
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(file, `is not JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw invalid(file, 'must be a non-empty JSON array of tokens');
  const tokens = parsed.map((entry: unknown, i) => parseEntry(file, entry, i));
  checkUnique(file, tokens);
  const { mode } = await stat(file);
  return { tokens, readableByOthers: (mode & 0o077) !== 0 && tokens.some((t) => 'token' in t) };
}

function parseEntry(file: string, entry: unknown, index: number): TokenConfig {
  const where = (field: string) => `entry ${index}${field ? ` ${field}` : ''}`;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw invalid(file, `${where('')} must be an object`);
  const e = entry as Record<string, unknown>;
  const unknown = Object.keys(e).filter((k) => !KEYS.has(k));
  if (unknown.length > 0) throw invalid(file, `${where('')} has unknown field(s) ${unknown.join(', ')} (allowed: ${[...KEYS].join(', ')})`);
  if (typeof e.name !== 'string' || !NAME_PATTERN.test(e.name)) throw invalid(file, `${where('name')} must match ${NAME_PATTERN.source}`);
  const label = (field: string) => `${where(field)} ("${String(e.name)}")`;
  if ((e.token === undefined) === (e.sha256 === undefined)) throw invalid(file, `${label('')} needs exactly one of token, sha256`);
  if (e.token !== undefined && (typeof e.token !== 'string' || e.token.length < MIN_TOKEN_LENGTH || /\s/.test(e.token))) {
    throw invalid(file, `${label('token')} must be a string of at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  }
  if (e.sha256 !== undefined && (typeof e.sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(e.sha256))) {
    throw invalid(file, `${label('sha256')} must be 64 hex digits (sha256 of the token, e.g. \`printf %s "$TOKEN" | sha256sum\`)`);
  }
  const apps = e.apps === undefined ? undefined : stringList(file, label('apps'), e.apps, (app) => app === '*' || new RegExp(APP_PATTERN).test(app), `"*" or an app name matching ${APP_PATTERN}`);
  const actions = e.actions === undefined ? undefined
    : stringList(file, label('actions'), e.actions, (a) => (ACTIONS as readonly string[]).includes(a), ACTIONS.join(', ')) as TokenAction[];
  const secret = typeof e.token === 'string' ? { token: e.token } : { sha256: (e.sha256 as string).toLowerCase() };
  return { name: e.name, ...secret, ...(apps ? { apps } : {}), ...(actions ? { actions } : {}) };
}

function stringList(file: string, where: string, value: unknown, ok: (item: string) => boolean, expected: string): string[] {
  if (!Array.isArray(value) || value.length === 0) throw invalid(file, `${where} must be a non-empty array (omit it for all)`);
  for (const item of value) {
    if (typeof item !== 'string' || !ok(item)) throw invalid(file, `${where}: ${JSON.stringify(item)} is not ${expected}`);
  }
  return value as string[];
}

function checkUnique(file: string, tokens: TokenConfig[]): void {
  const names = new Set<string>();
  const digests = new Map<string, string>();
  for (const t of tokens) {
    if (names.has(t.name)) throw invalid(file, `the name "${t.name}" is used twice (the audit log tells tokens apart by name)`);
    names.add(t.name);
    // One secret, two scopes: which one a request gets would depend on the file's order.
    const digest = t.token !== undefined ? createHash('sha256').update(t.token, 'utf8').digest('hex') : t.sha256;
    const other = digests.get(digest);
    if (other !== undefined) throw invalid(file, `"${t.name}" and "${other}" are the same token`);
    digests.set(digest, t.name);
  }
}

function invalid(file: string, detail: string): CliError {
  return new CliError('CLI_ERR_TOKENS_FILE', `${file} ${detail}`);
}
