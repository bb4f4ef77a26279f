import Module from 'node:module';

/**
 * The parts of Node's CommonJS loader (lib/internal/modules/cjs/loader.js, Node 20) the runtime
 * reads or patches. They are undocumented but stable since Node 12; @types/node does not type them.
 */
export interface CjsModule {
  id: string;
  filename: string;
  path: string;
  paths: string[];
  loaded: boolean;
  exports: unknown;
  children: CjsModule[];
  hot?: unknown;
  require(request: string): unknown;
  load(filename: string): void;
  _compile(content: string, filename: string, format?: 'commonjs'): unknown;
}

export interface CjsLoader {
  _cache: Record<string, CjsModule | undefined>;
  _pathCache: Record<string, string | undefined>;
  _load(request: string, parent: CjsModule | null, isMain: boolean): unknown;
  _resolveFilename(request: string, parent: CjsModule | null | undefined, isMain?: boolean, options?: unknown): string;
  _nodeModulePaths(dir: string): string[];
  _extensions: Record<string, (module: CjsModule, filename: string) => void>;
  prototype: CjsModule;
}

export const loader = Module as unknown as CjsLoader;

/** A stand-in parent so `_resolveFilename` resolves a request as if made from `filename`. */
export function fakeParent(filename: string, dir: string): CjsModule {
  return { id: filename, filename, path: dir, paths: loader._nodeModulePaths(dir) } as CjsModule;
}
