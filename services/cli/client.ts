import type * as httpModule from 'node:http';
import { Transform } from 'node:stream';
import { fs, http } from './builtins.js';
import { CliError, ServerError } from './errors.js';

/** `hotdeploy serve`'s default address (the service's default host and port). */
export const DEFAULT_SERVER = 'http://127.0.0.1:7070';

/** A bundle on disk (or, small, in memory), hashed before sending so the server can check `X-Bundle-Sha256`. */
export type UploadBody = { size: number; sha256: string } & ({ file: string } | { bytes: Buffer });

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  json?: unknown;
  upload?: UploadBody;
  /** Headers beside the ones the client sets (a delta's base, an If-None-Match). */
  headers?: Record<string, string>;
  /** Bytes of the upload sent so far (for the progress bar). */
  onProgress?: (sent: number, total: number) => void;
  /** Called once the whole request is handed to the OS: the wait for the answer starts. */
  onSent?: () => void;
}

export interface Response<T> {
  statusCode: number;
  headers: httpModule.IncomingHttpHeaders;
  body: T;
}

/**
 * The largest answer the CLI reads: every answer is JSON held in memory, and the largest real one
 * (the file list of a release with 100,000 files) is ~10 MiB. A server that sends more is not one.
 */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** How long to wait for the TCP connection; a deployment itself may legitimately take minutes. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Talks to the deploy service's HTTP API. Plain node:http so the upload streams from disk. */
export class Client {
  readonly server: URL;
  readonly #token: string | undefined;

  constructor(server: string, token?: string) {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw new CliError('CLI_ERR_USAGE', `--server ${JSON.stringify(server)} is not a URL (e.g. ${DEFAULT_SERVER})`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CliError('CLI_ERR_USAGE', `--server must be an http:// or https:// URL, not ${server}`);
    }
    this.server = url;
    this.#token = token === '' ? undefined : token;
  }

  async request<T>(method: string, pathname: string, options: RequestOptions = {}): Promise<Response<T>> {
    const url = new URL(pathname.replace(/^\//, ''), this.server.href.endsWith('/') ? this.server : this.server.href + '/');
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    let payload: string | undefined;
    if (options.json !== undefined) {
      payload = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    } else if (options.upload) {
      headers['content-type'] = 'application/gzip';
      headers['content-length'] = String(options.upload.size);
      headers['x-bundle-sha256'] = options.upload.sha256;
    }
    try {
      // node:https (and TLS with it) loads only for an https server: 20-40 ms of start-up otherwise.
      const transport = url.protocol === 'https:' ? (await import('node:https')).default : http;
      const { statusCode, text, headers: answered } = await this.#send(transport, method, url, headers, payload, options);
      return { statusCode, headers: answered, body: parseBody<T>(statusCode, text, url) };
    } catch (err) {
      if (!options.upload || !isUploadCut(err)) throw err;
      // The server refused the upload early (401, 403, 413, ...) and closed the connection while
      // the body was still flowing: the TCP reset that follows can drop its answer before Node reads
      // it. Those refusals depend on the headers alone, so ask again with the headers only.
      const transport = url.protocol === 'https:' ? (await import('node:https')).default : http;
      const answer = await this.#send(transport, method, url, headers, undefined, { probe: true }).catch(() => undefined);
      if (answer && answer.statusCode >= 400) parseBody(answer.statusCode, answer.text, url);
      throw new CliError('CLI_ERR_UPLOAD_CUT', `${this.server.origin} closed the connection during the upload`, { cause: err });
    }
  }

  #send(transport: Pick<typeof http, 'request'>, method: string, url: URL, headers: Record<string, string>, payload: string | undefined,
    options: RequestOptions & { probe?: boolean }): Promise<{ statusCode: number; text: string; headers: httpModule.IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      let answered = false;
      let connected = false;
      const req = transport.request(url, { method, headers });
      const connectTimer = setTimeout(() => req.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
        CONNECT_TIMEOUT_MS);
      req.on('socket', (socket) => {
        const onConnect = () => {
          connected = true;
          clearTimeout(connectTimer);
        };
        if (!socket.connecting) onConnect();
        else socket.once('connect', onConnect);
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(connectTimer);
        // An answer already read wins over the EPIPE / ECONNRESET of a server closing after it.
        if (answered) return;
        reject(connected && options.upload ? Object.assign(err, { uploadCut: true }) : unreachable(this.server, err));
      });
      if (options.onSent) req.once('finish', options.onSent);
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
          else if (!res.destroyed) {
            res.destroy();
            reject(new CliError('CLI_ERR_BAD_RESPONSE', `${this.server.origin} answered more than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`));
          }
        });
        res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', (err) => reject(unreachable(this.server, err)));
      });
      if (options.upload) pipeUpload(req, options.upload, options.onProgress, () => answered);
      else if (options.probe) probe(req, () => answered);
      else req.end(payload);
    });
  }
}

/** How long a headers-only probe waits for the early refusal before giving up on it. */
const PROBE_TIMEOUT_MS = 5_000;

/** Sends the headers and no body: a server that refuses on headers answers; otherwise give up. */
function probe(req: httpModule.ClientRequest, answered: () => boolean): void {
  req.flushHeaders();
  const timer = setTimeout(() => {
    if (!answered()) req.destroy(Object.assign(new Error('no early answer'), { code: 'ECONNRESET' }));
  }, PROBE_TIMEOUT_MS);
  req.on('close', () => clearTimeout(timer));
}

function isUploadCut(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { uploadCut?: boolean }).uploadCut === true;
}

/**
 * The bundle is read (and sent) this much at a time. With Node's default, 64 KB, sending a 48 MB
 * bundle costs the client 120 ms of CPU against 75 ms, and the upload takes 15-25% longer on a
 * 2-core machine where client and service share the cores (the bench's figure 6).
 */
export const UPLOAD_READ_BYTES = 1024 * 1024;

/** Streams the bundle file into the request, counting bytes; never holds more than a few reads of it in memory. */
function pipeUpload(req: httpModule.ClientRequest, upload: UploadBody, onProgress: RequestOptions['onProgress'],
  answered: () => boolean): void {
  if ('bytes' in upload) {
    req.end(upload.bytes, () => onProgress?.(upload.size, upload.size));
    return;
  }
  let sent = 0;
  const source = fs.createReadStream(upload.file, { highWaterMark: UPLOAD_READ_BYTES });
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      onProgress?.(sent, upload.size);
      callback(null, chunk);
    },
  });
  source.on('error', (err) => req.destroy(err));
  req.on('response', () => {
    // The server answered before the body ended (it refused it): stop reading the file.
    if (sent < upload.size) source.destroy();
  });
  req.on('close', () => {
    if (!answered()) source.destroy();
  });
  source.pipe(counter).pipe(req);
}

function parseBody<T>(statusCode: number, text: string, url: URL): T {
  let body: unknown;
  try {
    body = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new CliError('CLI_ERR_BAD_RESPONSE', `HTTP ${statusCode} from ${url.origin}${url.pathname}: ${text.slice(0, 120)}`);
  }
  if (statusCode >= 400) {
    const error = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const code = typeof error.code === 'string' ? error.code : `HTTP_${statusCode}`;
    const message = typeof error.message === 'string' ? error.message : (error.error as string | undefined) ?? 'request failed';
    throw new ServerError(statusCode, code, message);
  }
  return body as T;
}

function unreachable(server: URL, err: NodeJS.ErrnoException): CliError {
  const reason = err.code ?? err.message;
  return new CliError('CLI_ERR_UNREACHABLE',
    `${server.origin} (${reason}); is \`hotdeploy serve\` running there? Set --server or HOTDEPLOY_SERVER`, { cause: err });
}

/** Server and token from the flags, else HOTDEPLOY_SERVER / HOTDEPLOY_TOKEN, else the local default. */
export function clientFrom(flags: { server?: string | undefined; token?: string | undefined },
  env: NodeJS.ProcessEnv = process.env): Client {
  const server = flags.server || env.HOTDEPLOY_SERVER || DEFAULT_SERVER;
  const token = flags.token || env.HOTDEPLOY_TOKEN || undefined;
  return new Client(server, token);
}
