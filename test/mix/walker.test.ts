import { describe, expect, it } from 'vitest';
import { hashInts, mix32, Permutation } from '../../src/mix/permutation.js';
import { Sampler } from '../../src/mix/sampler.js';
import { TaskWalker } from '../../src/mix/task-walker.js';

/** Every value of the permutation, checked to be a bijection of [0, n). */
function expectBijection(p: Permutation): Uint32Array {
  const seen = new Uint8Array(p.n);
  const out = new Uint32Array(p.n);
  for (let i = 0; i < p.n; i++) {
    const x = p.at(i);
    if (!(Number.isInteger(x) && x >= 0 && x < p.n) || seen[x])
      throw new Error(`n=${p.n}: at(${i}) = ${x} is out of range or repeated`);
    seen[x] = 1;
    out[i] = x;
  }
  return out;
}

describe('Permutation (seeded Feistel with cycle walking)', () => {
  it.each([1, 2, 3, 4, 5, 7, 16, 17, 255, 1000, 4097, 65_536, 2 ** 20 + 7])('is a bijection of [0, %i)', (n) => {
    const keys = [
      [7, 3, 1],
      [0, 0, 0],
      [Number.MAX_SAFE_INTEGER, 79, 12],
    ];
    for (const key of n > 10_000 ? keys.slice(0, 1) : keys) expectBijection(new Permutation(n, ...key));
  });

  it('depends on seed, task and epoch, and on nothing else', () => {
    const order = (...key: number[]): string => Array.from(expectBijection(new Permutation(1000, ...key))).join(',');
    const base = order(1, 2, 3);
    expect(order(1, 2, 3)).toBe(base);
    for (const other of [order(2, 2, 3), order(1, 3, 3), order(1, 2, 4), order(2 ** 40 + 1, 2, 3)])
      expect(other).not.toBe(base);
  });

  it('gives the values of the float-arithmetic network on both sides of the int32 fast path (≤ 2^30)', () => {
    // The network as first written (float halves, keys in a loop): every stream and resume
    // token depends on these exact values, whichever arithmetic at() uses for a domain.
    const reference = (n: number, key: number[], i: number): number => {
      let bits = 2;
      while (2 ** bits < n) bits += 2;
      const h = bits / 2;
      const mask = 2 ** h - 1;
      const keys = [0, 1, 2, 3].map((r) => hashInts(...key, r));
      let x = i;
      do {
        let l = Math.floor(x / 2 ** h);
        let r = x & mask;
        for (const k of keys) [l, r] = [r, (l ^ (mix32(r ^ k) & mask)) >>> 0];
        x = l * 2 ** h + r;
      } while (x >= n);
      return x;
    };
    for (const n of [5, 1000, 65_537, 2 ** 28 + 1, 2 ** 30 - 1, 2 ** 30, 2 ** 30 + 1, 3 * 2 ** 31 + 5]) {
      for (const key of [
        [7, 3, 1],
        [Number.MAX_SAFE_INTEGER, 79, 12],
      ]) {
        const p = new Permutation(n, ...key);
        for (let k = 0; k < 300; k++) {
          const i = Math.floor((((k * 2654435761) % 2 ** 32) / 2 ** 32) * n);
          expect(p.at(i), `n=${n} i=${i}`).toBe(reference(n, key, i));
        }
      }
    }
  });

  it('shuffles: few fixed points and no long identity runs', () => {
    const p = expectBijection(new Permutation(100_000, 0, 0, 0));
    let fixed = 0;
    let ascending = 0;
    for (let i = 0; i < p.length; i++) {
      if (p[i] === i) fixed++;
      if (i > 0 && p[i] === p[i - 1]! + 1) ascending++;
    }
    expect(fixed).toBeLessThan(20);
    expect(ascending).toBeLessThan(200);
  });
});

describe('Sampler (Megatron blending)', () => {
  it('keeps every task within about one example of n·target at every n', () => {
    for (const T of [2, 3, 80, 300]) {
      const w = Array.from({ length: T }, (_, t) => ((t * 7919) % 101) ** 2 + 1);
      const sum = w.reduce((a, b) => a + b, 0);
      const target = Float64Array.from(w, (x) => x / sum);
      const s = new Sampler(target);
      const c = new Float64Array(T);
      let worst = 0;
      for (let n = 1; n <= 20_000; n++) {
        c[s.next()]!++;
        for (let t = 0; t < T; t++) worst = Math.max(worst, Math.abs(c[t]! - n * target[t]!));
      }
      expect(worst, `T=${T}`).toBeLessThan(1.5);
    }
  });

  it('never draws a zero-weight task; undo gives the same task back; state resumes exactly', () => {
    const target = Float64Array.from([0.5, 0, 0.3, 0.2]);
    const a = new Sampler(target);
    const draws: number[] = [];
    for (let i = 0; i < 500; i++) draws.push(a.next());
    expect(draws).not.toContain(1);
    const t = a.next();
    a.undo(t);
    expect(a.next()).toBe(t);
    const b = new Sampler(target, a.state());
    for (let i = 0; i < 500; i++) expect(b.next()).toBe(a.next());
  });

  it('credit counts an example toward its task, so the next draws compensate', () => {
    const s = new Sampler(Float64Array.from([0.5, 0.5]));
    for (let i = 0; i < 10; i++) s.credit(0);
    const draws = Array.from({ length: 10 }, () => s.next());
    expect(draws.every((t) => t === 1)).toBe(true);
    expect(s.state().counts).toEqual([10, 10]);
  });
});

describe('Sampler + TaskWalker: a 12-record task mixed with a 10⁶-record task', () => {
  const sizes = [12, 1_000_000];

  it('walks every epoch of the small task as a fresh permutation while the large one never repeats', () => {
    const sampler = new Sampler(Float64Array.from([0.3, 0.7]));
    const walker = new TaskWalker(sizes, 42);
    const small: number[] = [];
    const large = new Set<number>();
    for (let n = 0; n < 30_000; n++) {
      const t = sampler.next();
      const i = walker.next(t);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(sizes[t]!);
      if (t === 0) small.push(i);
      else {
        expect(large.has(i)).toBe(false);
        large.add(i);
      }
    }
    expect(small).toHaveLength(9000);
    expect(large.size).toBe(21_000);
    expect(walker.epoch(0)).toBe(750);
    expect(walker.epoch(1)).toBe(0);
    const epochs = new Set<string>();
    for (let e = 0; e < 750; e++) {
      const block = small.slice(e * 12, e * 12 + 12);
      expect([...block].sort((x, y) => x - y)).toEqual([...Array(12).keys()]);
      epochs.add(block.join(','));
    }
    // 750 independent shuffles of 12 items: essentially all distinct.
    expect(epochs.size).toBeGreaterThan(740);
  });

  it('advances epochs under natural proportions and resumes mid-epoch exactly', () => {
    const target = Float64Array.from(sizes.map((n) => n / (12 + 1_000_000)));
    const sampler = new Sampler(target);
    const walker = new TaskWalker(sizes, 7);
    const smallDraws: number[] = [];
    let saved: { s: ReturnType<Sampler['state']>; w: ReturnType<TaskWalker['state']>; at: number } | undefined;
    const tail: number[] = [];
    for (let n = 0; n < 2_500_000; n++) {
      const t = sampler.next();
      const i = walker.next(t);
      if (t === 0) smallDraws.push(i);
      if (n === 1_234_567) saved = { s: sampler.state(), w: walker.state(), at: n };
      if (saved && n > saved.at && tail.length < 1000) tail.push(t, i);
    }
    // 12 / 1,000,012 of 2.5M draws: 30 records, i.e. two full epochs and half of the third.
    expect(smallDraws).toHaveLength(30);
    expect(walker.epoch(0)).toBe(2);
    expect(walker.epoch(1)).toBe(2);
    for (const e of [0, 1]) expect(new Set(smallDraws.slice(e * 12, e * 12 + 12)).size).toBe(12);
    const s2 = new Sampler(target, saved!.s);
    const w2 = new TaskWalker(sizes, 7, saved!.w);
    const again: number[] = [];
    while (again.length < tail.length) {
      const t = s2.next();
      again.push(t, w2.next(t));
    }
    expect(again).toEqual(tail);
  });
});
