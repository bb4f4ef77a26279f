/** npm-packlist ships no types; the part used here (packlist.ts builds the tree it walks). */
declare module 'npm-packlist' {
  export interface PacklistNode {
    path: string;
    package: Record<string, unknown>;
    isProjectRoot: boolean;
    isLink: boolean;
    target: PacklistNode;
    edgesOut: Map<string, { to: PacklistNode | null; peer: boolean; dev: boolean }>;
  }
  export default function packlist(tree: PacklistNode, options?: { path?: string }): Promise<string[]>;
}
