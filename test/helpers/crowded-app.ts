import http from 'node:http';

/**
 * A handler-mode entry: `/health` answers at once (what the probe asks), `/` after 5 ms with
 * `{ message, pid }` (`message` from `message.js`). With `crowdFails`, `/` answers 500 while another
 * request is in flight in the same worker: a release that passes every probe and fails only under load.
 */
export function crowdEntry(crowdFails: boolean): string {
  return `
const message = require('./message.js');
let inFlight = 0;
module.exports = (req, res) => {
  res.setHeader('content-type', 'application/json');
  if (req.url === '/health') return res.end('{"ok":true}');
  inFlight++;
  const crowded = ${crowdFails} && inFlight > 1;
  setTimeout(() => {
    inFlight--;
    res.statusCode = crowded ? 500 : 200;
    res.end(JSON.stringify({ message, pid: process.pid }));
  }, 5);
};
`;
}

export interface Answered { port: number; status: number; pid: number; message: string }

/**
 * `connections` keep-alive clients per port asking `/` in a loop while `during` runs: every answer
 * with its port and worker pid, and every socket error or answer that is not the app's JSON.
 */
export async function requestLoop<T>(ports: number[], connections: number, during: (answers: readonly Answered[]) => Promise<T>): Promise<{ value: T; answers: Answered[]; errors: string[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const answers: Answered[] = [];
  const errors: string[] = [];
  let stop = false;
  const one = (port: number): Promise<void> => new Promise<void>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => {
        try {
          const { pid, message } = JSON.parse(body) as { pid: number; message: string };
          answers.push({ port, status: res.statusCode ?? 0, pid, message });
        } catch {
          errors.push(`port ${port}: status ${res.statusCode}: ${body.slice(0, 80)}`);
        }
        resolve();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => { errors.push(`port ${port}: ${err.code ?? err.message}`); resolve(); });
  });
  const loops = ports.flatMap((port) => Array.from({ length: connections }, async () => { while (!stop) await one(port); }));
  try {
    return { value: await during(answers), answers, errors };
  } finally {
    stop = true;
    await Promise.all(loops);
    agent.destroy();
  }
}
