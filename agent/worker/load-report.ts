import Module from 'node:module';
import path from 'node:path';

type Load = (this: unknown, filename: string) => void;

/**
 * Runs `run` with `onLoad(module)` called before each CommonJS module is evaluated, `module`
 * relative to `root` when inside it. A worker stuck in a module's evaluation can say nothing more,
 * so what it says must already be out: the caller writes each report to a socket or IPC channel,
 * whose write reaches the kernel before the module runs (libuv writes at once when it can).
 */
export async function reportingLoads<T>(root: string, onLoad: (module: string) => void, run: () => Promise<T>): Promise<T> {
  const proto = Module.prototype as unknown as { load: Load };
  const original = proto.load;
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  const mine: Load = function load(this: unknown, filename: string) {
    onLoad(filename.startsWith(prefix) ? filename.slice(prefix.length) : filename);
    return original.call(this, filename);
  };
  proto.load = mine;
  try {
    return await run();
  } finally {
    // Only while ours: an app's own hook installed meanwhile stays.
    if (proto.load === mine) proto.load = original;
  }
}
