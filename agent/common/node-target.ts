/**
 * What installed `node_modules` are built for: a package's native addon (or the prebuilt binary an
 * install picked) loads only on the same Node ABI (`process.versions.modules`), platform, CPU and C
 * library. The deploy service records it with each install; a host elsewhere compares its own.
 */
export interface NodeTarget {
  abi: string;
  platform: string;
  arch: string;
  /** `glibc` or `musl` on Linux (prebuilt binaries differ), null elsewhere. */
  libc: 'glibc' | 'musl' | null;
}

let own: NodeTarget | undefined;

/** This process's target (the C library is read once, from Node's diagnostic report header). */
export function nodeTarget(): NodeTarget {
  own ??= { abi: process.versions.modules, platform: process.platform, arch: process.arch, libc: libc() };
  return own;
}

/** Why node_modules built for `built` cannot run here, or undefined when they can. */
export function targetMismatch(built: NodeTarget, here: NodeTarget = nodeTarget()): string | undefined {
  const differs = (['abi', 'platform', 'arch', 'libc'] as const).filter((k) => built[k] !== here[k]);
  if (differs.length === 0) return undefined;
  return `its node_modules were installed for ${describeTarget(built)}, this host runs ${describeTarget(here)}`;
}

export function describeTarget(target: NodeTarget): string {
  return `Node ABI ${target.abi} on ${target.platform}-${target.arch}${target.libc ? ` (${target.libc})` : ''}`;
}

function libc(): NodeTarget['libc'] {
  if (process.platform !== 'linux') return null;
  const report = process.report as { excludeNetwork?: boolean; getReport(): object } | undefined;
  if (!report) return null;
  report.excludeNetwork = true;
  const header = (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}
