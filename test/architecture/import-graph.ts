import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The import graph of a source tree and what is wrong with it: cycles (type-only imports count,
 * since they still tie two files' designs together) and imports from a lower layer up to a
 * higher one. Uses the TypeScript compiler's own import scanner, so `import type`, `export from`
 * and dynamic `import()` are all seen, without a dependency-graph package.
 */
export interface ImportProblems {
  /** Each cycle as its files (relative to the root), in import order. */
  readonly cycles: readonly string[][];
  /** `from → to (layer a → layer b)` for every import that goes up or sideways between layers. */
  readonly upward: readonly string[];
  /** Files in a folder the layer table does not name. */
  readonly unknownLayers: readonly string[];
  /** Allowed edges that no longer exist (to be deleted from the allowance). */
  readonly stale: readonly string[];
}

/** How an import is named in reports and allowances. */
export const edgeName = (from: string, to: string): string => `${from} → ${to}`;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** File (relative to root) → the files it imports (relative to root); only files of the tree. */
export function importGraph(root: string): Map<string, string[]> {
  const files = sourceFiles(root);
  const known = new Set(files.map((f) => relative(root, f)));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((i) => i.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => relative(root, resolve(dirname(file), spec)).replace(/\.js$/, '.ts'))
      .filter((t) => known.has(t));
    graph.set(relative(root, file), [...new Set(targets)].sort());
  }
  return graph;
}

/** A file's layer: its top-level folder, or for a top-level file its name (src/cli.ts → cli). */
export function layerOf(file: string): string {
  const [first] = file.split(sep);
  return (first ?? '').replace(/\.ts$/, '');
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(scc.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/**
 * Cycles, upward imports and unplaced files of the tree under `root`, ignoring the `allowed`
 * edges (known faults being removed): a cycle counts only if it survives without them.
 */
export function importProblems(
  root: string,
  ranks: Readonly<Record<string, number>>,
  allowed: readonly string[] = [],
): ImportProblems {
  const full = importGraph(root);
  const skip = new Set(allowed);
  const seen = new Set<string>();
  const graph = new Map<string, string[]>();
  const upward: string[] = [];
  const unknown = new Set<string>();
  for (const [from, targets] of full) {
    const a = layerOf(from);
    if (ranks[a] === undefined) unknown.add(from);
    const kept: string[] = [];
    for (const to of targets) {
      const edge = edgeName(from, to);
      if (skip.has(edge)) {
        seen.add(edge);
        continue;
      }
      kept.push(to);
      const b = layerOf(to);
      if (a === b || ranks[a] === undefined || ranks[b] === undefined) continue;
      if (ranks[b]! >= ranks[a]!) upward.push(`${edge} (${a} → ${b})`);
    }
    graph.set(from, kept);
  }
  const stale = allowed.filter((e) => !seen.has(e));
  return { cycles: findCycles(graph), upward: upward.sort(), unknownLayers: [...unknown].sort(), stale };
}
