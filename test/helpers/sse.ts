import http from 'node:http';

/** One server-sent event as read off the wire (`data` parsed as JSON). */
export interface SseFrame<T = unknown> {
  id?: string;
  event?: string;
  data: T;
}

export interface SseStream<T> {
  status: number;
  /** Every frame with a `data:` line so far, in order (grows as they arrive). */
  frames: SseFrame<T>[];
  close: () => void;
}

/** Opens `GET /v1/events` on a listening server and collects frames as they arrive. */
export function openEvents<T = unknown>(port: number, token: string, options: { query?: string; lastEventId?: string } = {}): Promise<SseStream<T>> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/v1/events${options.query ?? ''}`, headers }, (res) => {
      const frames: SseFrame<T>[] = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data === undefined) continue;
          const id = /^id: (.*)$/m.exec(block)?.[1];
          const event = /^event: (.*)$/m.exec(block)?.[1];
          frames.push({ ...(id === undefined ? {} : { id }), ...(event === undefined ? {} : { event }), data: JSON.parse(data) as T });
        }
      });
      res.on('error', () => undefined);
      resolve({ status: res.statusCode ?? 0, frames, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}
