import { copyFileSync, linkSync, mkdirSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * A copy of the tree `from` at `to` whose files are hard links to the originals, except those
 * `copy` selects (by path relative to `from`), which are real copies. Creating thousands of files
 * costs far more than linking them; a test may add, delete or rename files in the linked tree, and
 * write to the copied ones, but must not write to, or change the times of, a linked file: that
 * would change the original.
 */
export function linkTree(from: string, to: string, copy: (rel: string) => boolean = () => false): void {
  mkdirSync(to, { recursive: true });
  for (const ent of readdirSync(from, { withFileTypes: true, recursive: true })) {
    const src = join(ent.parentPath, ent.name);
    const rel = relative(from, src);
    if (ent.isDirectory()) mkdirSync(join(to, rel), { recursive: true });
    else if (copy(rel)) copyFileSync(src, join(to, rel));
    else linkSync(src, join(to, rel));
  }
}
