import http from 'node:http';
import { TOKENS } from './server.js';

export interface Trickle {
  /** Bytes of the body sent so far. */
  sent: () => number;
  /** The answer's status once it came. */
  status: () => number | undefined;
  /** Stops sending and cuts the connection. */
  stop: () => void;
}

/**
 * An upload sent at 2 KB/s (a slow link, or a client holding an upload place on purpose): 2 KB each
 * second until stopped. It declares the whole bundle's length, so the server waits for the rest.
 */
export function trickleUpload(port: number, app: string, version: string, bundle: Buffer): Trickle {
  let at = 0;
  let status: number | undefined;
  const req = http.request({
    host: '127.0.0.1', port, method: 'PUT', path: `/v1/apps/${app}/releases/${version}`,
    headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/gzip', 'content-length': String(bundle.length) },
  }, (res) => {
    status = res.statusCode;
    res.resume();
  });
  req.on('error', () => undefined);
  const send = () => {
    if (at >= bundle.length) return;
    req.write(bundle.subarray(at, at + 2048));
    at += 2048;
  };
  send();
  const timer = setInterval(send, 1000);
  return {
    sent: () => at,
    status: () => status,
    stop: () => {
      clearInterval(timer);
      req.destroy();
    },
  };
}
