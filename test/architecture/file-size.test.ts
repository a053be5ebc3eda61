/**
 * The size rule of src/: no source file over MAX_LINES lines. Why: a file that keeps growing is
 * a file doing several things (a class that serves two kinds of stream, a reader that also
 * caches and validates); past this size it is split by concept, each part with its own first
 * comment, as the layers of test/architecture/layers.ts are kept by the import check.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));
const MAX_LINES = 300;

/** Every .ts file under `dir`, as paths relative to src/. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [relative(SRC, p)] : [];
  });
}

/** Lines as `wc -l` and an editor count them: a last line without its newline counts too. */
function lineCount(text: string): number {
  if (text === '') return 0;
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

describe(`file size of src/ (at most ${MAX_LINES} lines)`, () => {
  it('counts lines as wc -l does', () => {
    expect([lineCount(''), lineCount('a\n'), lineCount('a\nb'), lineCount('a\n\nb\n')]).toEqual([0, 1, 2, 3]);
  });

  it(`no file of src/ is over ${MAX_LINES} lines`, () => {
    const files = sources(SRC);
    expect(files.length).toBeGreaterThan(100);
    const over = files
      .map((f) => ({ file: f, lines: lineCount(readFileSync(join(SRC, f), 'utf8')) }))
      .filter((f) => f.lines > MAX_LINES)
      .map((f) => `${f.file}: ${f.lines} lines`);
    expect(over, 'split these by concept').toEqual([]);
  });
});
