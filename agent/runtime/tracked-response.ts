import { ServerResponse, type IncomingMessage } from 'node:http';

/** What counts a response in flight: `leave` is called once, when the response closes. */
export interface InFlightCounter {
  leave(): void;
}

/**
 * A ServerResponse that tells its counter when it closes, finished or aborted: Node emits 'close'
 * on every response once (`emitCloseNT` after 'finish', or when the socket closes first; node
 * lib/_http_server.js). One method on the prototype instead of a `once('close')` listener per
 * response: a listener is two closures and a listener-array change per request, which showed in
 * figure 4's CPU profiles and garbage collections (docs/BENCHMARKS.md, miss 4).
 * Servers opt in with `http.createServer({ ServerResponse: TrackedResponse })` (the worker's own
 * server does); `HandlerHost` falls back to a listener for responses of any other server.
 */
export class TrackedResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  private counter: InFlightCounter | undefined = undefined;

  /** Counts this response out of `counter` when it closes. One counter per response. */
  countIn(counter: InFlightCounter): void {
    this.counter = counter;
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'close' && this.counter !== undefined) {
      const counter = this.counter;
      this.counter = undefined;
      counter.leave();
    }
    return super.emit(event, ...args);
  }
}
