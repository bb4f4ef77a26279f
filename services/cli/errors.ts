/**
 * The CLI's own failures (the server's are `DEPLOY_ERR_*` and arrive as `ServerError`), and how every
 * failure becomes one line and an exit code. Only `main.ts` exits; everything else throws these.
 */

/** Exit codes, documented in the README's CLI section; never reused for another meaning. */
export const ExitCode = {
  ok: 0,
  /** The deployment ran and a worker failed or was rolled back. */
  deployFailed: 1,
  /** Bad flags or arguments. */
  usage: 2,
  /** The server could not be reached. */
  unreachable: 3,
  /** The server refused the request (400, 401, 403, 404, 409, 413, 422, ...). */
  rejected: 4,
  /** The server failed (5xx), or the CLI itself hit a bug. */
  internal: 5,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export const CliErrorCodes = {
  CLI_ERR_USAGE: 'invalid arguments',
  CLI_ERR_UNREACHABLE: 'cannot reach the hotdeploy server',
  CLI_ERR_NO_SERVER: 'no server given',
  CLI_ERR_BAD_RESPONSE: 'the server answered something that is not hotdeploy JSON',
  CLI_ERR_UPLOAD_CUT: 'the upload was cut off',
  CLI_ERR_SOURCE: 'the bundle source cannot be used',
  CLI_ERR_PACK: 'npm pack failed',
  CLI_ERR_VERSION: 'no version could be determined',
  CLI_ERR_TOKENS_FILE: 'the tokens file is invalid',
  CLI_ERR_TLS: 'the TLS certificate or key cannot be used',
} as const;

export type CliErrorCode = keyof typeof CliErrorCodes;

const exitCodeOf: Record<CliErrorCode, ExitCodeValue> = {
  CLI_ERR_USAGE: ExitCode.usage,
  CLI_ERR_UNREACHABLE: ExitCode.unreachable,
  CLI_ERR_NO_SERVER: ExitCode.usage,
  CLI_ERR_BAD_RESPONSE: ExitCode.internal,
  CLI_ERR_UPLOAD_CUT: ExitCode.unreachable,
  CLI_ERR_SOURCE: ExitCode.usage,
  CLI_ERR_PACK: ExitCode.usage,
  CLI_ERR_VERSION: ExitCode.usage,
  CLI_ERR_TOKENS_FILE: ExitCode.usage,
  CLI_ERR_TLS: ExitCode.usage,
};

export class CliError extends Error {
  readonly code: CliErrorCode;
  readonly exitCode: ExitCodeValue;

  constructor(code: CliErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${CliErrorCodes[code]}: ${detail}` : CliErrorCodes[code], options);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = exitCodeOf[code];
  }
}

/** An error response of the deploy service: `{ statusCode, code, message }`. */
export class ServerError extends Error {
  readonly statusCode: number;
  readonly code: string;

  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.name = 'ServerError';
    this.statusCode = statusCode;
    this.code = code;
  }
}

/** One line for the user and the exit code. Stacks only for what is not a user error (a CLI bug). */
export function describeError(err: unknown): { line: string; exitCode: ExitCodeValue; stack?: string } {
  if (err instanceof ServerError) {
    const exitCode = err.statusCode >= 500 ? ExitCode.internal : ExitCode.rejected;
    const hint = err.statusCode === 401 ? ' (pass --token or set HOTDEPLOY_TOKEN)' : '';
    return { line: `error ${err.code} (HTTP ${err.statusCode}): ${err.message}${hint}`, exitCode };
  }
  if (err instanceof CliError) return { line: `error ${err.code}: ${err.message}`, exitCode: err.exitCode };
  const message = err instanceof Error ? err.message : String(err);
  const stack = err instanceof Error ? err.stack : undefined;
  return { line: `error CLI_ERR_INTERNAL: ${message}`, exitCode: ExitCode.internal, ...(stack ? { stack } : {}) };
}
