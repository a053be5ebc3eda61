/**
 * Test child scripts as JavaScript: `childScript(url)` gives the path of a runnable .js for a
 * TypeScript child (a helper that tests start as `node <file> …`), so children start without a
 * TypeScript loader in them or in their worker threads. The child and the test and client modules
 * it imports are transpiled (types stripped, file by file) into .cache/test-js/ beside their
 * repository paths; there `src` is a link to dist/, so the child runs the built sources, as the
 * CLI children do (helpers/cli.ts; the test run's global setup rebuilds dist/ when src/ is newer).
 */
import { mkdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as TS from 'typescript';
import { ROOT } from './cli.js';

const OUT = join(ROOT, '.cache', 'test-js');
/** Sources transpiled by this process: a child's imports are checked once per run. */
const done = new Map<string, string>();
let ts: typeof TS | undefined;

const mtime = (path: string): number => statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0;

/** `src` → dist/ (the built sources) and `proto` → proto/ (clients/ts finds the .proto two folders up). */
function links(): void {
  mkdirSync(OUT, { recursive: true });
  for (const [name, target] of [
    ['src', join(ROOT, 'dist')],
    ['proto', join(ROOT, 'proto')],
  ] as const) {
    try {
      symlinkSync(target, join(OUT, name), 'dir');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/** Transpiles `file` (a .ts under the repository, outside src/) and, first, the .ts modules it imports. */
function transpile(file: string): string {
  const known = done.get(file);
  if (known) return known;
  const out = join(OUT, relative(ROOT, file)).replace(/\.ts$/, '.js');
  done.set(file, out);
  const source = readFileSync(file, 'utf8');
  for (const [, spec] of source.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)\.js'/g)) {
    const dep = resolve(dirname(file), `${spec!}.ts`);
    if (!relative(join(ROOT, 'src'), dep).startsWith('..')) continue; // src/ is dist/ there
    if (mtime(dep)) transpile(dep);
  }
  if (mtime(out) > mtime(file)) return out;
  ts ??= createRequire(import.meta.url)('typescript') as typeof TS;
  const { outputText } = ts.transpileModule(source, {
    fileName: file,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
    },
  });
  mkdirSync(dirname(out), { recursive: true });
  // Test files run side by side: each writes its own temporary and renames it into place.
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, outputText);
  renameSync(tmp, out);
  return out;
}

/** The runnable .js of a TypeScript child script, given as `new URL('./x.ts', import.meta.url)` or a path. */
export function childScript(url: URL | string): string {
  links();
  return transpile(typeof url === 'string' ? url : fileURLToPath(url));
}
