/**
 * The app's dependency graph, by module identity (relative path), recorded as modules `require`
 * each other. Node's own `module.children` only serves memory accounting; propagation needs parents.
 */
export class ModuleGraph {
  private readonly parents = new Map<string, Set<string>>();
  private readonly children = new Map<string, Set<string>>();

  addEdge(parent: string, child: string): void {
    if (parent === child) return;
    add(this.children, parent, child);
    add(this.parents, child, parent);
  }

  parentsOf(rel: string): ReadonlySet<string> {
    return this.parents.get(rel) ?? EMPTY;
  }

  childrenOf(rel: string): ReadonlySet<string> {
    return this.children.get(rel) ?? EMPTY;
  }

  /**
   * A disposed module's own requires are gone with its old code (the new version records its own);
   * the edges into it stay, since its parents still require it by path.
   */
  dropOutgoing(rel: string): void {
    for (const child of this.children.get(rel) ?? EMPTY) remove(this.parents, child, rel);
    this.children.delete(rel);
  }

  /** Forget a module entirely (gone from the release, or the app closes). */
  drop(rel: string): void {
    this.dropOutgoing(rel);
    for (const parent of this.parents.get(rel) ?? EMPTY) remove(this.children, parent, rel);
    this.parents.delete(rel);
  }

  clear(): void {
    this.parents.clear();
    this.children.clear();
  }
}

const EMPTY: ReadonlySet<string> = new Set();

function add(map: Map<string, Set<string>>, key: string, value: string): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function remove(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
