import type { Stats } from 'node:fs';
import { MAX_CANARY_COUNT, MAX_CANARY_WATCH_MS, MIN_CANARY_WATCH_MS, parseCanarySize } from '../../../agent/canary-size.js';
import { fs } from '../builtins.js';
import type { Client, UploadBody } from '../client.js';
import { checkName, connectionArgs, defineCliCommand, segment } from '../command.js';
import { reportDeployment, type WriteAnswer } from '../deployment.js';
import { APP_PATTERN, VERSION_PATTERN } from '../../server/schemas.js';
import { CliError, ServerError, type ExitCodeValue } from '../errors.js';
import { currentFiles, rememberCurrent } from '../current-release.js';
import type { LocalRelease } from '../delta.js';
import { formatBytes, type Io, uploadProgress, warmTables, writeLine } from '../output.js';
import type { ReleaseView } from '../views.js';
import { choiceQuery, deployChoiceArgs, deployChoices, type DeployChoices } from '../deploy-choices.js';

export interface PushOptions extends DeployChoices {
  /** A directory (packed like `npm pack`) or a .tgz. */
  source: string;
  app: string;
  /** A version, `git` (the commit), or undefined for package.json's version. */
  version?: string | undefined;
  activate?: boolean;
  wait?: boolean;
  json?: boolean;
  /** Pack a directory with `npm pack` (a full bundle) instead of in-process with deltas. */
  npmPack?: boolean;
  /** `n` workers (hosts, behind NATS) or `n%` first, watched before the rest; `0`: none, whatever the app's settings say. */
  canary?: string | undefined;
  /** How long the canary is watched: milliseconds, or a number with `s` / `m`. */
  canaryWatch?: string | undefined;
}

/** `PUT /v1/apps/:app/releases/:version`'s answer; `created` false = the same bytes were already stored. */
interface PushAnswer extends WriteAnswer {
  release: ReleaseView;
  created: boolean;
}

/**
 * Uploads a directory or a .tgz and reports the deployment it started. A directory is packed
 * in-process and sent as a delta against the app's current release when the server has one
 * (`PUT …/releases/:version/delta`), else (or with `npmPack`) as a full bundle.
 */
export async function push(client: Client, options: PushOptions, io: Io, env: NodeJS.ProcessEnv = process.env): Promise<ExitCodeValue> {
  checkName('--app', options.app, APP_PATTERN);
  const canary = canaryQuery(options);
  const info = sourceStat(options.source);
  if (info.isDirectory() && !options.npmPack) return pushDirectory(client, options, io, env, canary);
  return pushBundle(client, options, io, canary);
}

/** Synchronous, as everything before a push's first request: node:fs/promises alone takes ~3 ms to load. */
function sourceStat(source: string): Stats {
  try {
    return fs.statSync(source);
  } catch (err) {
    throw new CliError('CLI_ERR_SOURCE', `${source} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The query every upload of a push carries: whether to activate, whether to wait, the canary. */
type UploadQuery = Record<string, string | undefined>;

function uploadQuery(options: PushOptions, canary: CanaryQuery): UploadQuery {
  return { activate: options.activate === false ? 'false' : undefined, wait: options.wait === false ? 'false' : undefined, ...canary, ...choiceQuery(options) };
}

/** A .tgz as given, or a directory packed by `npm pack`: always the full bundle (`PUT …/releases/:version`). */
async function pushBundle(client: Client, options: PushOptions, io: Io, canary: CanaryQuery): Promise<ExitCodeValue> {
  const json = options.json ?? false;
  const { describeBundle, prepareBundle, resolveVersion } = await import('../pack.js');
  const bundle = await prepareBundle(options.source);
  try {
    const version = checkName('--version', await resolveVersion(options.version, options.source, bundle), VERSION_PATTERN);
    if (!json) writeLine(io.err, `pushing ${options.app}@${version} (${describeBundle(bundle)})`);
    const progress = uploadProgress(io, json);
    const response = await client.request<PushAnswer>('PUT',
      `/v1/apps/${segment(options.app)}/releases/${segment(version)}`, {
        upload: bundle,
        query: uploadQuery(options, canary),
        onProgress: (sent, total) => progress?.update(sent, total),
      }).finally(() => progress?.stop());
    if (!json) printRelease(io, response.body, response.statusCode);
    return reportDeployment(io, json, response.body, idleNote(options, version));
  } finally {
    await bundle.cleanup();
  }
}

/** Codes after which the delta is given up and the full bundle sent (the retry on a moved base aside). */
const FULL_BUNDLE_INSTEAD = new Set(['DEPLOY_ERR_DELTA_BASE_NOT_FOUND', 'DEPLOY_ERR_DELTA_BASE_NOT_CURRENT', 'DEPLOY_ERR_DELTA_MISMATCH',
  'DEPLOY_ERR_DELTA_UNKNOWN_PATH', 'DEPLOY_ERR_ROUTE_NOT_FOUND']);

/**
 * A directory, packed in-process: the delta against the current release when there is one (retried
 * once against a newer current release when someone pushed meanwhile), the full bundle otherwise.
 */
async function pushDirectory(client: Client, options: PushOptions, io: Io, env: NodeJS.ProcessEnv, canary: CanaryQuery): Promise<ExitCodeValue> {
  const json = options.json ?? false;
  const note = (line: string) => {
    if (!json) writeLine(io.err, line);
  };
  // The workers' table is drawn the moment the answer arrives: its library loads while the service works.
  const warm = json ? undefined : warmTables;
  // The current release's manifest is asked for while the folder is listed and hashed: the round
  // trip overlaps the local work instead of following it.
  const asked = currentFiles(client, options.app, env);
  asked.catch(() => undefined);
  // A whole turn of the event loop first, its poll phase included: Node connects on a next tick, and
  // sends the request when a poll phase sees the connection (on loopback or a LAN, the next one). One
  // setImmediate is not enough when this runs from a poll-phase callback (a file read finishing): its
  // check phase comes before any other poll. The local side (hashing, gzip, npm's packing rules:
  // node:crypto alone takes ~7 ms) then loads and lists the folder while the request is on its way.
  await new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
  const { fullBundle, makeDelta, readLocalRelease } = await import('../delta.js');
  const local = await readLocalRelease(options.source, env);
  const version = checkName('--version', await versionOf(options, local), VERSION_PATTERN);
  const target = `${options.app}@${version}`;
  const query = uploadQuery(options, canary);
  const releasePath = `/v1/apps/${segment(options.app)}/releases/${segment(version)}`;
  // What this push learned is kept for the next one while the service works, once the first upload
  // is sent, not after the answer. A push that then fails leaves a release cache that no longer
  // matches the service: the next push's manifest exchange answers in full instead of a 304. A
  // release stored without activation is not the current one: the cache keeps naming that.
  let saved: Promise<unknown> | undefined;
  const becomesCurrent = options.activate !== false;
  const onSent = (): void => {
    saved ??= Promise.all([local.saveCache(),
      becomesCurrent && rememberCurrent(client, options.app, { version, manifestSha256: local.digest, ...local.manifest }, env)]);
    warm?.();
  };
  let response: { statusCode: number; body: PushAnswer } | undefined;
  for (let attempt = 0; attempt < 2 && response === undefined; attempt++) {
    const base = await (attempt === 0 ? asked : currentFiles(client, options.app, env));
    if (base === undefined) break;
    const delta = makeDelta(local, base);
    note(`pushing ${target} as a delta against ${base.version}: ${delta.changed.length} changed, ${delta.removed.length} removed, `
      + `${formatBytes(delta.body.size)} (of ${local.list.files.length} files)`);
    try {
      response = await client.request<PushAnswer>('PUT', `${releasePath}/delta`, {
        upload: delta.body, query, headers: { 'x-hotdeploy-base': base.version, 'x-hotdeploy-manifest-sha256': local.digest }, onSent,
      });
    } catch (err) {
      if (!(err instanceof ServerError) || !FULL_BUNDLE_INSTEAD.has(err.code)) throw err;
      if (err.code === 'DEPLOY_ERR_DELTA_BASE_NOT_CURRENT' && attempt === 0) {
        note(`${base.version} is no longer current (${err.code}): diffing against the current release again`);
        continue;
      }
      note(`the delta was refused (${err.code}): sending the full bundle`);
      break;
    }
  }
  response ??= await sendFull(client, local, fullBundle(local), releasePath, query, target, json, io, onSent);
  await saved;
  if (!json) printRelease(io, response.body, response.statusCode);
  return reportDeployment(io, json, response.body, idleNote(options, version));
}

/** `--version` as given, the commit for `git`, else package.json's version. */
async function versionOf(options: PushOptions, local: LocalRelease): Promise<string> {
  if (options.version !== 'git') return options.version ?? local.list.version;
  const { gitVersion } = await import('../pack.js');
  return gitVersion(options.source);
}

async function sendFull(client: Client, local: LocalRelease, body: UploadBody, releasePath: string, query: UploadQuery, target: string,
  json: boolean, io: Io, onSent: () => void): Promise<{ statusCode: number; body: PushAnswer }> {
  if (!json) {
    writeLine(io.err, `pushing ${target} as a full bundle (${local.list.files.length} files, ${formatBytes(body.size)}, sha256 ${body.sha256.slice(0, 12)}`
      + `${local.list.lockfile ? `, with ${local.list.lockfile}` : ''})`);
  }
  const progress = uploadProgress(io, json);
  return client.request<PushAnswer>('PUT', releasePath, { upload: body, query, onProgress: (sent, total) => progress?.update(sent, total), onSent })
    .finally(() => progress?.stop());
}

function idleNote(options: PushOptions, version: string): string {
  return options.activate === false
    ? `not activated (--no-activate): \`hotdeploy activate ${options.app} ${version}\` makes it current`
    : `${options.app}@${version} is already current`;
}

interface CanaryQuery { canary?: string; canaryWatchMs?: string }

/** `--canary` and `--canary-watch` as the service's query, checked before anything is packed or sent. */
export function canaryQuery(options: Pick<PushOptions, 'canary' | 'canaryWatch' | 'activate'>): CanaryQuery {
  const query: CanaryQuery = {};
  if (options.canary !== undefined) {
    if (parseCanarySize(options.canary) === undefined) {
      throw new CliError('CLI_ERR_USAGE', `--canary ${JSON.stringify(options.canary)} is neither a number of workers (n, up to ${MAX_CANARY_COUNT}) nor a percentage (n%, up to 100%)`);
    }
    query.canary = options.canary.trim();
  }
  if (options.canaryWatch !== undefined) {
    const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)?$/.exec(options.canaryWatch.trim());
    const ms = match ? Math.round(Number(match[1]) * ({ ms: 1, s: 1_000, m: 60_000 }[match[2] ?? 'ms'] ?? 1)) : NaN;
    if (!(ms >= MIN_CANARY_WATCH_MS && ms <= MAX_CANARY_WATCH_MS)) {
      throw new CliError('CLI_ERR_USAGE', `--canary-watch ${JSON.stringify(options.canaryWatch)} is not a time from ${MIN_CANARY_WATCH_MS} ms to 24 h (e.g. 30s, 2m, 45000)`);
    }
    query.canaryWatchMs = String(ms);
  }
  if (options.activate === false && (query.canary !== undefined || query.canaryWatchMs !== undefined)) {
    throw new CliError('CLI_ERR_USAGE', '--canary needs a push that activates (not --no-activate)');
  }
  return query;
}

function printRelease(io: Io, answer: PushAnswer, statusCode: number): void {
  const { release } = answer;
  const stored = answer.created ? 'stored' : 'already stored with the same bytes';
  writeLine(io.out, `release ${release.app}@${release.version} ${stored} (${release.files} files, ${formatBytes(release.bytes)} unpacked)`);
  const { install } = release;
  if (install) {
    const how = install.how === 'linked' ? `linked from ${install.from ?? 'an earlier release'}, same lockfile` : `npm ci, ${(install.ms / 1000).toFixed(1)} s`;
    writeLine(io.out, `dependencies: ${install.files} files in node_modules (${how})`);
  }
  if (statusCode === 202) writeLine(io.out, 'deployment queued (--no-wait): follow it with `hotdeploy status`');
}

export const pushCommand = defineCliCommand({
  meta: { name: 'push', description: 'upload a directory (packed like npm pack) or a .tgz and deploy it' },
  args: {
    source: { type: 'positional', description: 'app directory or .tgz bundle', required: true },
    app: { type: 'string', description: 'app name', required: true },
    version: { type: 'string', description: 'release version, or `git` for the commit (default: package.json version)' },
    activate: { type: 'boolean', default: true, description: 'make it current right away', negativeDescription: 'only store the release' },
    wait: { type: 'boolean', default: true, description: 'wait for the deployment\'s outcome', negativeDescription: 'return once it is queued' },
    'npm-pack': { type: 'boolean', default: false, description: 'pack a directory with `npm pack` and send the full bundle (no delta)' },
    canary: { type: 'string', description: 'n workers (hosts, behind NATS) or n% first, watched before the rest (0: none, whatever the app\'s settings say)' },
    'canary-watch': { type: 'string', description: 'how long the canary is watched: 45000, 30s, 2m (default: the app\'s setting, else its health window)' },
    ...deployChoiceArgs,
    ...connectionArgs,
  },
  run: (args, ctx) => push(ctx.client(args), {
    source: args.source, app: args.app, version: args.version, activate: args.activate, wait: args.wait, json: args.json ?? false, ...deployChoices(args),
    npmPack: args['npm-pack'], canary: args.canary, canaryWatch: args['canary-watch'],
  }, ctx.io, ctx.env),
});
