import { describe, expect, it } from 'vitest';
import { LengthHistogram, SIGNIFICANT_BITS, lengthBucket } from '../../src/index/length-histogram.js';

/** The exact computation the manifest compiler used before (every length kept and sorted). */
function exact(lengths: number[]): [number, number, number, number] {
  const s = [...lengths].sort((a, b) => a - b);
  const at = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return [at(0.5), at(0.9), at(0.99), s[s.length - 1]!];
}

/** A deterministic xorshift stream, so the test sees the same lengths every run. */
function lengths(n: number, seed: number, max: number): number[] {
  let x = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    // Skewed toward short records, like a corpus: mostly hundreds of tokens, a tail to `max`.
    return Math.floor((x / 2 ** 32) ** 3 * max);
  });
}

describe('task length percentiles in bounded memory', () => {
  it('are exact for lengths below 2^SIGNIFICANT_BITS', () => {
    const v = lengths(20_000, 7, 2 ** SIGNIFICANT_BITS);
    const h = new LengthHistogram();
    for (const x of v) h.add(x);
    expect(h.percentiles()).toEqual(exact(v));
  });

  it('are at most 2^-(SIGNIFICANT_BITS-1) below the exact ones for long records, never above, the max exact', () => {
    const v = lengths(200_000, 11, 2_000_000);
    const h = new LengthHistogram();
    for (const x of v) h.add(x);
    const got = h.percentiles();
    const want = exact(v);
    expect(got[3]).toBe(want[3]);
    for (let k = 0; k < 3; k++) {
      expect(got[k]).toBeLessThanOrEqual(want[k]!);
      expect(got[k]).toBeGreaterThanOrEqual(want[k]! * (1 - 2 ** -(SIGNIFICANT_BITS - 1)));
    }
    expect(want[2]).toBeGreaterThan(2 ** SIGNIFICANT_BITS);
  });

  it('hold a bounded number of buckets however many records are added, whatever their order', () => {
    const v = lengths(1_000_000, 3, 2 ** 31 - 1);
    const a = new LengthHistogram();
    const b = new LengthHistogram();
    for (const x of v) a.add(x);
    for (let i = v.length - 1; i >= 0; i--) b.add(v[i]!);
    expect(a.percentiles()).toEqual(b.percentiles());
    // 2^12 exact buckets plus 2^11 per octave from 2^12 to 2^31.
    expect(a.buckets).toBeLessThanOrEqual(2 ** SIGNIFICANT_BITS + 19 * 2 ** (SIGNIFICANT_BITS - 1));
    for (const x of [0, 1, 4095, 4096, 4097, 8191, 2 ** 31 - 1, 2 ** 20 + 12345]) {
      const bucket = lengthBucket(x);
      expect(bucket).toBeLessThanOrEqual(x);
      expect(x - bucket).toBeLessThan(Math.max(1, x * 2 ** -(SIGNIFICANT_BITS - 1)));
    }
  });
});
