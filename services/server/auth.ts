import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { DeployError } from './errors.js';
import { readJsonFile, writeJsonAtomic } from './fs-atomic.js';
import type { TokenAction, TokenConfig } from './options.js';

export const ALL_ACTIONS: readonly TokenAction[] = ['push', 'activate', 'read', 'agent'];

/** A token as kept: its sha256 digest, never the token itself. */
export interface StoredToken {
  name: string;
  sha256: string;
  /** '*' covers every app. */
  apps: string[] | '*';
  actions: TokenAction[];
}

export function tokensFile(dataDir: string): string {
  return path.join(dataDir, 'tokens.json');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function storeToken(config: TokenConfig): StoredToken {
  const apps = config.apps === undefined || config.apps.includes('*') ? '*' : [...config.apps];
  const sha256 = config.token !== undefined ? hashToken(config.token) : config.sha256.toLowerCase();
  return { name: config.name, sha256, apps, actions: [...(config.actions ?? ALL_ACTIONS)] };
}

export async function loadStoredTokens(dataDir: string): Promise<StoredToken[]> {
  return (await readJsonFile<StoredToken[]>(tokensFile(dataDir))) ?? [];
}

/**
 * With no tokens configured and none stored, creates an admin token (every app, every action) and
 * stores only its digest, mode 0600. The plain token is returned this once, for `serve` to print.
 */
export async function ensureAdminToken(dataDir: string): Promise<string | undefined> {
  if ((await loadStoredTokens(dataDir)).length > 0) return undefined;
  const token = `hd_${randomBytes(32).toString('base64url')}`;
  await writeJsonAtomic(tokensFile(dataDir), [storeToken({ name: 'admin', token })], 0o600);
  return token;
}

/** Who a request is, once its bearer token checked out. */
export interface Principal {
  name: string;
  apps: string[] | '*';
  actions: TokenAction[];
}

export class TokenRegistry {
  private readonly digests: { digest: Buffer; token: StoredToken }[];

  constructor(tokens: StoredToken[]) {
    this.digests = tokens.map((token) => ({ digest: Buffer.from(token.sha256, 'hex'), token }));
  }

  /**
   * 401 unless the header carries a known token. Digests are compared, not tokens:
   * `crypto.timingSafeEqual` throws on different lengths.
   */
  authenticate(header: string | undefined): Principal {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!match) throw new DeployError('DEPLOY_ERR_UNAUTHORIZED');
    const digest = createHash('sha256').update(match[1] as string, 'utf8').digest();
    let found: StoredToken | undefined;
    for (const candidate of this.digests) {
      if (timingSafeEqual(candidate.digest, digest)) found = candidate.token;
    }
    if (!found) throw new DeployError('DEPLOY_ERR_UNAUTHORIZED');
    return { name: found.name, apps: found.apps, actions: found.actions };
  }
}

/** 403 unless the principal may do `action` (on `app`, when the route names one). */
export function authorize(principal: Principal, action: TokenAction, app?: string): void {
  if (!principal.actions.includes(action)) throw new DeployError('DEPLOY_ERR_FORBIDDEN', `token "${principal.name}" may not ${action}`);
  if (app !== undefined && !coversApp(principal, app)) {
    throw new DeployError('DEPLOY_ERR_FORBIDDEN', `token "${principal.name}" does not cover app ${app}`);
  }
}

export function coversApp(principal: Principal, app: string): boolean {
  return principal.apps === '*' || principal.apps.includes(app);
}
