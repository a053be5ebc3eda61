import { describe, expect, it } from 'vitest';
import { BlockOrder, recordsPerBlock } from '../../src/mix/block-order.js';
import { TaskWalker } from '../../src/mix/task-walker.js';

/** The whole epoch, checked to be a bijection of [0, n). */
function epoch(o: BlockOrder): number[] {
  const seen = new Uint8Array(o.n);
  const out: number[] = [];
  for (let i = 0; i < o.n; i++) {
    const x = o.at(i);
    if (!(Number.isInteger(x) && x >= 0 && x < o.n) || seen[x])
      throw new Error(`n=${o.n}: at(${i}) = ${x} is out of range or repeated`);
    seen[x] = 1;
    out.push(x);
  }
  return out;
}

/** The fewest runs of `block` consecutive records (cut at any offset: the order rotates by one) that draws [from, to) fall in. */
function blocksTouched(order: number[], from: number, to: number, block: number, n: number): number {
  let best = Infinity;
  for (let rot = 0; rot < block; rot++) {
    const s = new Set<number>();
    for (let i = from; i < to; i++) s.add(Math.floor(((((order[i]! - rot) % n) + n) % n) / block));
    best = Math.min(best, s.size);
  }
  return best;
}

describe('BlockOrder (blocks of consecutive records, drawn a window of blocks at a time)', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 4, 3],
    [7, 4, 3],
    [12, 4, 3],
    [13, 4, 3],
    [100, 1, 1],
    [100, 1, 7],
    [100, 7, 1],
    [1000, 16, 8],
    [1001, 16, 8],
    [999, 32, 64],
    [5, 64, 16],
    [65_537, 40, 16],
  ];
  it.each(shapes)(
    'is a bijection of [0, %i) with blocks of %i and a window of %i, in every epoch',
    (n, block, window) => {
      for (const e of [0, 1, 5]) epoch(new BlockOrder(n, { block, window }, 3, 2, e));
    },
  );

  it('draws each window of window × block positions from exactly `window` blocks of consecutive records', () => {
    const n = 4096;
    const block = 16;
    const window = 4;
    const order = epoch(new BlockOrder(n, { block, window }, 9, 1, 0));
    for (let g = 0; g < n / (block * window); g++)
      expect(blocksTouched(order, g * block * window, (g + 1) * block * window, block, n)).toBe(window);
  });

  it('gives a new order (and new block boundaries) every epoch, and depends on seed and task', () => {
    const key = (seed: number, task: number, e: number): string =>
      epoch(new BlockOrder(1000, { block: 10, window: 4 }, seed, task, e)).join(',');
    const base = key(1, 2, 3);
    expect(key(1, 2, 3)).toBe(base);
    for (const other of [key(2, 2, 3), key(1, 3, 3), key(1, 2, 4)]) expect(other).not.toBe(base);
  });

  it('refuses a position outside the epoch instead of walking forever', () => {
    const o = new BlockOrder(10, { block: 3, window: 2 }, 0, 0, 0);
    expect(() => o.at(10)).toThrow(RangeError);
    expect(() => o.at(-1)).toThrow(RangeError);
  });

  it('sizes blocks to fill the block tokens, at least one record', () => {
    expect(recordsPerBlock(100, 16_384)).toBe(163);
    expect(recordsPerBlock(20_000, 16_384)).toBe(1);
    expect(recordsPerBlock(0, 16_384)).toBe(16_384);
  });
});

describe('TaskWalker with blocks', () => {
  it('serves every record of a task exactly once per epoch, a new order each epoch, across tasks', () => {
    const sizes = [1, 5, 97, 1000];
    const shapes = [
      { block: 1, window: 1 },
      { block: 2, window: 2 },
      { block: 8, window: 3 },
      { block: 30, window: 4 },
    ];
    const w = new TaskWalker(sizes, 11, undefined, shapes);
    for (let t = 0; t < sizes.length; t++) {
      const n = sizes[t]!;
      const epochs: string[] = [];
      for (let e = 0; e < 3; e++) {
        const seen = Array.from({ length: n }, () => w.next(t));
        expect(new Set(seen).size, `task ${t} epoch ${e}`).toBe(n);
        expect(w.epoch(t)).toBe(e + 1);
        epochs.push(seen.join(','));
      }
      if (n > 2) expect(new Set(epochs).size).toBe(3);
    }
  });

  it('resumes from its cursors and epochs alone', () => {
    const sizes = [97, 1000];
    const shapes = [
      { block: 8, window: 3 },
      { block: 30, window: 4 },
    ];
    const a = new TaskWalker(sizes, 5, undefined, shapes);
    const draws = (w: TaskWalker, k: number): number[] => Array.from({ length: k }, (_, i) => w.next(i % 2));
    draws(a, 1501);
    const b = new TaskWalker(sizes, 5, a.state(), shapes);
    expect(draws(b, 700)).toEqual(draws(a, 700));
  });
});
