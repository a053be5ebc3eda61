import { describe, expect, it } from 'vitest';
import { BlockOrder } from '../../src/mix/block-order.js';
import { Permutation } from '../../src/mix/permutation.js';
import { SparseWalk, type RecordSubset } from '../../src/mix/sparse-walk.js';
import { TaskWalker } from '../../src/mix/task-walker.js';
import { rng } from '../helpers/seeded-rng.js';

/** Kinds per record: 0 servable, 1 removed by a guard, 2 does not fit. */
function subsetOf(kinds: readonly number[], otherRemoved: boolean): RecordSubset {
  const pick = (k: number): Int32Array => Int32Array.from(kinds.flatMap((x, i) => (x === k ? [i] : [])));
  return { size: kinds.length, pass: pick(0), other: pick(otherRemoved ? 1 : 2), otherRemoved };
}

describe('permutation inverse', () => {
  it('indexOf undoes at, small and float-path domains', () => {
    for (const n of [1, 2, 3, 17, 1000, 65_537, 2 ** 30 + 7, 2 ** 34 + 3]) {
      const p = new Permutation(n, 5, 2, 9);
      const r = rng(n % 1000);
      for (let j = 0; j < Math.min(n, 2000); j++) {
        const i = n <= 2000 ? j : Math.floor(r() * n);
        expect(p.indexOf(p.at(i))).toBe(i);
      }
    }
  });
});

describe('block order inverse', () => {
  it('indexOf undoes at for many shapes, short blocks and groups included', () => {
    for (const [n, block, window] of [
      [1, 1, 1],
      [7, 3, 2],
      [100, 8, 4],
      [1000, 7, 16],
      [4097, 64, 3],
      [50, 100, 2],
    ] as const) {
      for (const epoch of [0, 1, 5]) {
        const o = new BlockOrder(n, { block, window }, 3, 1, epoch);
        for (let i = 0; i < n; i++) expect(o.indexOf(o.at(i))).toBe(i);
      }
    }
  });
});

describe('seeking to servable records', () => {
  it('reaches the records rejection reaches, at the same walk position, with the same dropped count', () => {
    const r = rng(7);
    for (let trial = 0; trial < 60; trial++) {
      const n = 1 + Math.floor(r() * 400);
      // Mostly unservable; some trials with many removed records, some with none.
      const removedShare = trial % 3 === 0 ? 0 : r() * 0.6;
      const kinds = Array.from({ length: n }, () => (r() < 0.03 ? 0 : r() < removedShare ? 1 : 2));
      if (!kinds.includes(0)) kinds[Math.floor(r() * n)] = 0;
      const sizes = [3, n, 5];
      const seed = Math.floor(r() * 1000);
      // Every fourth trial walks in the blocks order.
      const blocks =
        trial % 4 === 1
          ? [1, 2, 3].map(() => ({ block: 1 + Math.floor(r() * 20), window: 1 + Math.floor(r() * 5) }))
          : undefined;
      const plain = new TaskWalker(sizes, seed, undefined, blocks);
      const seeking = new TaskWalker(sizes, seed, undefined, blocks);
      const sparse = new SparseWalk(seeking);
      const subset = subsetOf(kinds, trial % 2 === 0);
      for (let draw = 0; draw < 3 * kinds.filter((k) => k === 0).length + 5; draw++) {
        let dropped = 0;
        let got = plain.next(1);
        while (kinds[got] !== 0) {
          if (kinds[got] === 2) dropped++;
          got = plain.next(1);
        }
        const skipped = sparse.skip(1, subset);
        expect(seeking.next(1)).toBe(got);
        expect(skipped).toBe(dropped);
        expect(seeking.state()).toEqual(plain.state());
      }
    }
  });

  it('refuses a subset with nothing servable, and a walk cannot seek backwards', () => {
    const w = new TaskWalker([10], 1);
    expect(() =>
      new SparseWalk(w).skip(
        0,
        subsetOf(
          Array.from({ length: 10 }, () => 2),
          false,
        ),
      ),
    ).toThrow(/no servable record/);
    w.next(0);
    w.next(0);
    expect(() => w.seek(0, 0, 1)).toThrow(RangeError);
  });
});
