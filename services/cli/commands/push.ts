import { MAX_CANARY_COUNT, MAX_CANARY_WATCH_MS, MIN_CANARY_WATCH_MS, parseCanarySize } from '../../../agent/canary-size.js';
import type { Client } from '../client.js';
import { checkName, connectionArgs, defineCliCommand, segment } from '../command.js';
import { reportDeployment, type WriteAnswer } from '../deployment.js';
import { APP_PATTERN, VERSION_PATTERN } from '../../server/schemas.js';
import { CliError, type ExitCodeValue } from '../errors.js';
import { formatBytes, type Io, uploadProgress, writeLine } from '../output.js';
import { describeBundle, prepareBundle, resolveVersion } from '../pack.js';
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

/** Uploads a bundle (`PUT /v1/apps/:app/releases/:version`) and reports the deployment it started. */
export async function push(client: Client, options: PushOptions, io: Io): Promise<ExitCodeValue> {
  const json = options.json ?? false;
  checkName('--app', options.app, APP_PATTERN);
  const canary = canaryQuery(options);
  const bundle = await prepareBundle(options.source);
  try {
    const version = checkName('--version', await resolveVersion(options.version, options.source, bundle), VERSION_PATTERN);
    if (!json) writeLine(io.err, `pushing ${options.app}@${version} (${describeBundle(bundle)})`);
    const progress = uploadProgress(io, json);
    const response = await client.request<PushAnswer>('PUT',
      `/v1/apps/${segment(options.app)}/releases/${segment(version)}`, {
        upload: bundle,
        query: { activate: options.activate === false ? 'false' : undefined, wait: options.wait === false ? 'false' : undefined, ...canary, ...choiceQuery(options) },
        onProgress: (sent, total) => progress?.update(sent, total),
      }).finally(() => progress?.stop());
    if (!json) printRelease(io, response.body, response.statusCode);
    const idle = options.activate === false
      ? `not activated (--no-activate): \`hotdeploy activate ${options.app} ${version}\` makes it current`
      : `${options.app}@${version} is already current`;
    return reportDeployment(io, json, response.body, idle);
  } finally {
    await bundle.cleanup();
  }
}

/** `--canary` and `--canary-watch` as the service's query, checked before anything is packed or sent. */
export function canaryQuery(options: Pick<PushOptions, 'canary' | 'canaryWatch' | 'activate'>): { canary?: string; canaryWatchMs?: string } {
  const query: { canary?: string; canaryWatchMs?: string } = {};
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
    canary: { type: 'string', description: 'n workers (hosts, behind NATS) or n% first, watched before the rest (0: none, whatever the app\'s settings say)' },
    'canary-watch': { type: 'string', description: 'how long the canary is watched: 45000, 30s, 2m (default: the app\'s setting, else its health window)' },
    ...deployChoiceArgs,
    ...connectionArgs,
  },
  run: (args, ctx) => push(ctx.client(args), {
    source: args.source, app: args.app, version: args.version, activate: args.activate, wait: args.wait, json: args.json ?? false, ...deployChoices(args),
    canary: args.canary, canaryWatch: args['canary-watch'],
  }, ctx.io),
});
