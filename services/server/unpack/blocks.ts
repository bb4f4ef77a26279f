/**
 * The 1 MB blocks an upload's bytes travel in: from the socket to the inflater (upload.ts,
 * extract.ts), and inflated from the inflater to the writer (inflate-worker.ts, extract-worker.ts).
 * A block is transferred, never copied, and once its bytes are used the thread that used them hands
 * it back the same way, to be filled again. A fresh megabyte costs its page faults and, on the event
 * loop, external memory that V8 pays for in garbage collections: a 48 MB upload makes ~96 of them on
 * the two hops, and the collections are a third of the event loop's time (docs/BENCHMARKS.md, figure 6).
 */
export const BLOCK_BYTES = 1024 * 1024;

/** A thread's spare blocks, up to `max` of them; anything else given is left to the garbage collector. */
export class BlockPool {
  private readonly spare: ArrayBuffer[] = [];

  constructor(private readonly max: number) {}

  take(): ArrayBuffer {
    return this.spare.pop() ?? new ArrayBuffer(BLOCK_BYTES);
  }

  /** A block back; a detached or smaller buffer (byteLength not a block's) is not kept, nor one kept already. */
  give(block: ArrayBuffer): void {
    if (block.byteLength === BLOCK_BYTES && this.spare.length < this.max && !this.spare.includes(block)) this.spare.push(block);
  }
}
