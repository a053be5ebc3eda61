import { describe, expect, it } from 'vitest';
import { BestFitWindow } from '../../src/pack/best-fit.js';
import { PendingUnits } from '../../src/pack/pending-units.js';
import type { Segment } from '../../src/pack/segment-layout.js';
import { LevelBitset } from '../../src/util/level-bitset.js';

/**
 * The best-fit packer finds its pick through length buckets and a bitset (pending-units.ts)
 * instead of scanning the window. Streams must not change by a single unit: these tests hold it
 * to the rule as written in best-fit.ts, applied by the plain scan over the window in draw order,
 * on random lengths with many ties, every window size from next-fit up, resume and retain.
 */
const unit = (length: number): Segment => ({ turns: [], length });

/** The rule by definition: the oldest unit starts a row, then the largest that fits, the oldest among equals. */
class ScanWindow {
  constructor(
    private readonly window: number,
    public pool: Segment[] = [],
  ) {}

  row(seqLen: number, draw: () => Segment): Segment[] {
    const row: Segment[] = [];
    let free = seqLen;
    for (;;) {
      while (this.pool.length < this.window) this.pool.push(draw());
      let pick = row.length === 0 ? 0 : -1;
      for (let j = 0, best = 0; row.length > 0 && j < this.pool.length; j++) {
        const len = this.pool[j]!.length;
        if (len <= free && len > best) [pick, best] = [j, len];
      }
      if (pick < 0) return row;
      const [u] = this.pool.splice(pick, 1);
      row.push(u!);
      free -= u!.length;
    }
  }
}

/** A seeded stream of unit lengths: mostly short with many repeats, some long, a few of exactly seqLen. */
function lengths(seed: number, seqLen: number): () => number {
  let x = seed >>> 0 || 1;
  const next = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0), x / 2 ** 32);
  return () => {
    const r = next();
    if (r < 0.02) return seqLen;
    if (r < 0.3) return 1 + Math.floor(next() * seqLen);
    return 1 + Math.floor(next() * 24) * 7;
  };
}

describe('best-fit window through length buckets', () => {
  it.each([
    [1, 100],
    [2, 64],
    [7, 300],
    [64, 4096],
    [256, 4096],
    [256, 40_000],
    [1000, 2048],
  ])('window %i, seq_len %i: the same unit in every place of every row as the plain scan', (window, seqLen) => {
    for (const seed of [1, 2, 3]) {
      const next = lengths(seed * 7919 + window, seqLen);
      const drawn: Segment[] = [];
      const draw = (): Segment => {
        const u = unit(next());
        drawn.push(u);
        return u;
      };
      // Both see the very same unit objects, in the same draw order.
      let replay = 0;
      const again = (): Segment => drawn[replay++]!;
      const fast = new BestFitWindow(window);
      const scan = new ScanWindow(window);
      for (let r = 0; r < 400; r++) {
        const a = fast.row(seqLen, draw);
        const b = scan.row(seqLen, again);
        expect(a.length).toBe(b.length);
        for (let k = 0; k < a.length; k++) expect(a[k], `seed ${seed} row ${r} place ${k}`).toBe(b[k]);
      }
      expect(fast.pending).toEqual(scan.pool);
      expect(replay).toBe(drawn.length);
    }
  });

  it('resumes from pending units and keeps order through retain, then packs as the scan does', () => {
    const seqLen = 512;
    const next = lengths(99, seqLen);
    const drawn: Segment[] = [];
    const draw = (): Segment => (drawn.push(unit(next())), drawn[drawn.length - 1]!);
    let replay = 0;
    const again = (): Segment => drawn[replay++]!;
    const first = new BestFitWindow(32);
    const scan = new ScanWindow(32);
    for (let r = 0; r < 50; r++) expect(first.row(seqLen, draw)).toEqual(scan.row(seqLen, again));
    // A resume token restores the pending units in order; a mixture update drops some.
    const restored = new BestFitWindow(32, [...first.pending]);
    expect(restored.pending).toEqual(scan.pool);
    const keep = (u: Segment): boolean => u.length % 3 !== 0;
    restored.retain(keep);
    scan.pool = scan.pool.filter(keep);
    expect(restored.pending).toEqual(scan.pool);
    for (let r = 0; r < 200; r++) {
      const a = restored.row(seqLen, draw);
      const b = scan.row(seqLen, again);
      expect(a.length).toBe(b.length);
      a.forEach((u, k) => expect(u).toBe(b[k]));
    }
    expect(restored.pending).toEqual(scan.pool);
  });

  it('never places a zero-length unit by fit, and starts a row with a unit longer than the row', () => {
    const units = [unit(10), unit(0), unit(600), unit(0), unit(5)];
    let at = 0;
    const p = new BestFitWindow(5, []);
    const row = p.row(100, () => units[at++] ?? unit(1000));
    expect(row).toEqual([units[0], units[4]]);
    expect(p.pending.map((u) => u.length)).toEqual([0, 600, 0, 1000, 1000]);
    expect(p.row(100, () => unit(1000))).toEqual([units[1]]);
    expect(p.row(100, () => unit(1000))[0]).toBe(units[2]);
  });
});

describe('PendingUnits memory', () => {
  it('follows the units pending, not how long one waits: full-row units waiting behind 100,000 one-token units', () => {
    // Every 300th unit fills a row alone; best fit for one token passes it by, so it waits until
    // it is the oldest while the one-token units stream past (draws, not units, pile up in between).
    const pool = new PendingUnits([], 512);
    for (let i = 0; i < 100_000; i++) {
      pool.push(unit(i % 300 === 0 ? 4096 : 1));
      if (pool.size >= 256 && !pool.takeBestFit(1)) pool.takeOldest();
    }
    expect(pool.capacity).toBeLessThanOrEqual(512);
    const left = pool.list();
    expect(left).toHaveLength(pool.size);
    expect(left.filter((u) => u.length === 4096).length).toBeGreaterThan(200);
  });
});

describe('LevelBitset', () => {
  it.each([1, 31, 32, 33, 1024, 1025, 40_000])(
    'size %i: atMost(x) is the largest member ≤ x, through adds and deletes',
    (size) => {
      const set = new LevelBitset(size);
      const members = new Uint8Array(size);
      let x = size;
      const rand = (n: number): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0), x % n);
      const brute = (q: number): number => {
        for (let i = Math.min(q, size - 1); i >= 0; i--) if (members[i]) return i;
        return -1;
      };
      for (let step = 0; step < 3000; step++) {
        const v = rand(size);
        if (rand(3) === 0 && members[v]) {
          set.delete(v);
          members[v] = 0;
        } else if (!members[v]) {
          set.add(v);
          members[v] = 1;
        }
        for (const q of [rand(size), rand(size + 50), 0, size - 1, v, v - 1])
          expect(set.atMost(q), `size ${size} step ${step} atMost(${q})`).toBe(brute(q));
      }
      expect(set.atMost(-1)).toBe(-1);
    },
  );

  it('refuses a size that is not a positive integer', () => {
    expect(() => new LevelBitset(0)).toThrow(/positive integer, got 0/);
  });
});
