import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { importProblems } from './import-graph.js';
import { KNOWN_EDGES, LAYER_RANKS } from './layers.js';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

describe('import rule of src/ (test/architecture/layers.ts)', () => {
  it('src/ has no import cycle and no import from a lower layer to a higher one', () => {
    const p = importProblems(SRC, LAYER_RANKS, KNOWN_EDGES);
    expect(p.cycles).toEqual([]);
    expect(p.upward).toEqual([]);
    expect(p.unknownLayers).toEqual([]);
  });

  describe('the checker', () => {
    const root = mkdtempSync(join(tmpdir(), 'flan-layers-'));
    afterAll(() => rmSync(root, { recursive: true, force: true }));
    const write = (file: string, text: string): void => {
      mkdirSync(dirname(join(root, file)), { recursive: true });
      writeFileSync(join(root, file), text);
    };
    write('index/a.ts', "import type { B } from './b.js';\nexport type A = B | 1;\n");
    write('index/b.ts', "export { type A } from './a.js';\nexport type B = 2;\n");
    write('index/c.ts', "export const c = async () => import('../stream/s.js');\n");
    write('stream/s.ts', "import { c } from '../index/c.js';\nexport const s = c;\n");
    write(
      'corpus/r.ts',
      "import { s } from '../stream/s.js';\nimport type { A } from '../index/a.js';\nexport const r: A | typeof s = 1;\n",
    );
    write('mystery/m.ts', 'export const m = 1;\n');
    const ranks = { corpus: 3, index: 4, stream: 8 };

    it('finds type-only and dynamic-import cycles, upward imports and unplaced files', () => {
      const p = importProblems(root, ranks);
      expect(p.cycles).toEqual([
        ['index/a.ts', 'index/b.ts'],
        ['index/c.ts', 'stream/s.ts'],
      ]);
      expect(p.upward).toEqual([
        'corpus/r.ts → index/a.ts (corpus → index)',
        'corpus/r.ts → stream/s.ts (corpus → stream)',
        'index/c.ts → stream/s.ts (index → stream)',
      ]);
      expect(p.unknownLayers).toEqual(['mystery/m.ts']);
    });

    it('ignores exactly the allowed edges and names the allowances that are gone', () => {
      const p = importProblems(root, ranks, [
        'index/b.ts → index/a.ts',
        'index/c.ts → stream/s.ts',
        'index/a.ts → index/c.ts',
      ]);
      expect(p.cycles).toEqual([]);
      expect(p.upward).toEqual([
        'corpus/r.ts → index/a.ts (corpus → index)',
        'corpus/r.ts → stream/s.ts (corpus → stream)',
      ]);
      expect(p.stale).toEqual(['index/a.ts → index/c.ts']);
    });
  });
});
