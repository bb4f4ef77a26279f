// Server-sent events read with fetch: EventSource cannot send an Authorization header, and the
// token must not travel in a URL. The parser follows the HTML standard's event stream
// interpretation; the follower reconnects and resumes with Last-Event-ID.

/** @typedef {{ type: string; data: string; id: string }} SseEvent */

export class SseParser {
  /** @param {(event: SseEvent) => void} onEvent */
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.type = '';
    this.data = '';
    /** The last `id:` seen; it stays for later events, as the standard says. */
    this.lastEventId = '';
    /** @type {number | undefined} the last `retry:` in ms */
    this.retry = undefined;
  }

  /** @param {string} text decoded text, in any chunking */
  push(text) {
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone \r at the end may be the first half of \r\n: wait for the next chunk.
      if (!match || (match[0] === '\r' && match.index === this.buffer.length - 1)) return;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  /** @param {string} line */
  line(line) {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data += `${value}\n`;
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
  }

  dispatch() {
    const { type, data } = this;
    this.type = '';
    this.data = '';
    if (data === '') return;
    this.onEvent({ type: type || 'message', data: data.slice(0, -1), id: this.lastEventId });
  }
}

/**
 * @typedef {object} FollowOptions
 * @property {string} url
 * @property {() => Record<string, string>} headers
 * @property {(event: SseEvent) => void} onEvent
 * @property {(state: 'connecting' | 'live' | 'reconnecting') => void} onState
 * @property {(status: number) => void} onRefused a 401 or 403: the token is not (or no longer) good
 * @property {number} [silenceMs] no byte for this long (the server sends a comment every 15 s): reconnect
 */

/**
 * Reads the stream until stopped, reconnecting after 1 s, doubling up to 15 s, and resuming from
 * the last event id it saw.
 * @param {FollowOptions} options
 */
export function followEvents(options) {
  let lastEventId = '';
  let stopped = false;
  /** @type {AbortController | undefined} */
  let current;
  const silenceMs = options.silenceMs ?? 45_000;

  /** @returns {Promise<boolean>} false when the stream must not be retried */
  async function once() {
    const controller = new AbortController();
    current = controller;
    /** @type {Record<string, string>} */
    const headers = { ...options.headers(), accept: 'text/event-stream' };
    if (lastEventId !== '') headers['last-event-id'] = lastEventId;
    const res = await fetch(options.url, { headers, cache: 'no-store', credentials: 'omit', signal: controller.signal });
    if (res.status === 401 || res.status === 403) {
      options.onRefused(res.status);
      return false;
    }
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    options.onState('live');
    const parser = new SseParser((event) => {
      lastEventId = event.id;
      options.onEvent(event);
    });
    parser.lastEventId = lastEventId;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let watchdog;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), silenceMs);
    };
    try {
      for (arm(); ; arm()) {
        const { value, done } = await reader.read();
        if (done) return true;
        parser.push(value);
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  void (async () => {
    let delay = 1000;
    while (!stopped) {
      options.onState('connecting');
      const started = Date.now();
      try {
        if (!(await once())) return;
      } catch {
        // A dropped connection, a network error, or our own abort: try again unless stopped.
      }
      if (stopped) return;
      options.onState('reconnecting');
      if (Date.now() - started > 30_000) delay = 1000;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15_000);
    }
  })();

  return {
    stop() {
      stopped = true;
      current?.abort();
    },
  };
}
