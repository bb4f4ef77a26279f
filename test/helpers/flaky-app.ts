import http from 'node:http';

/**
 * An entry that fails only some requests: `/` and most `/items/<n>` answer, every fourth item
 * throws in the handler (a 500). The health probe of `/` passes; a window under load trips.
 */
export const FLAKY_ENTRY = `
const message = require('./message.js');
module.exports = (req, res) => {
  const item = /^\\/items\\/(\\d+)$/.exec(req.url);
  if (item && Number(item[1]) % 4 === 0) throw new Error('item ' + item[1] + ' has no price');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ message, pid: process.pid }));
};
`;

/** Keep-alive clients asking `/items/<n>` on `port` in a loop until `stop`, which answers the count per status (0: socket error). */
export function itemLoop(port: number, connections: number): { stop: () => Promise<Map<number, number>> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const statuses = new Map<number, number>();
  const count = (status: number): void => void statuses.set(status, (statuses.get(status) ?? 0) + 1);
  let n = 0;
  let stopped = false;
  const loop = async (): Promise<void> => {
    while (!stopped) {
      await new Promise<void>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: `/items/${n++}`, agent }, (res) => {
          res.resume();
          res.on('end', () => { count(res.statusCode ?? 0); resolve(); });
        });
        req.on('error', () => { count(0); resolve(); });
      });
    }
  };
  const loops = Array.from({ length: connections }, loop);
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
      return statuses;
    },
  };
}
