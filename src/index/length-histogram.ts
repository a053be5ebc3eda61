/**
 * A task's example-length distribution in bounded memory, for the manifest's p50/p90/p99/max.
 * Keeping every record's length (as the manifest compiler once did) costs 8 bytes per record: at
 * 10⁸ records that is close to a gigabyte held by one merge process. Lengths are instead counted
 * in buckets that keep a length's top SIGNIFICANT_BITS bits: exact below 2^SIGNIFICANT_BITS
 * (4096 tokens), and above it a bucket spans less than 2^-(SIGNIFICANT_BITS-1) of its value, so a
 * reported percentile is at most 0.05 % below the true one (never above it; the max is exact).
 * A histogram holds at most 2^SIGNIFICANT_BITS + 2^(SIGNIFICANT_BITS-1) per octave above it
 * (about 43 k buckets for lengths up to 2^31), however many records it counts, and the result does
 * not depend on the order lengths are added in.
 */
export const SIGNIFICANT_BITS = 12;

/** The bucket of `v` (a non-negative integer): its lower bound, `v` with the bits below its top SIGNIFICANT_BITS cleared. */
export function lengthBucket(v: number): number {
  if (v < 2 ** SIGNIFICANT_BITS) return v;
  // Lengths are int32 row fields: clz32 gives the exact bit length (log2 may round 2^k - 1 up).
  const bits = v < 2 ** 32 ? 32 - Math.clz32(v) : Math.floor(Math.log2(v)) + 1;
  const drop = bits - SIGNIFICANT_BITS;
  const unit = 2 ** drop;
  return Math.floor(v / unit) * unit;
}

export class LengthHistogram {
  private readonly counts = new Map<number, number>();
  private total = 0;
  private max = 0;

  add(v: number): void {
    const b = lengthBucket(v);
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1);
    this.total++;
    if (v > this.max) this.max = v;
  }

  /** Buckets in use (what the histogram costs in memory). */
  get buckets(): number {
    return this.counts.size;
  }

  /**
   * [p50, p90, p99, max]: the p-quantile is the bucket holding the sorted length at index
   * floor(p·n) (the definition the exact computation used), reported as its lower bound.
   */
  percentiles(): [number, number, number, number] {
    if (this.total === 0) return [0, 0, 0, 0];
    const keys = [...this.counts.keys()].sort((a, b) => a - b);
    const at = (p: number): number => {
      const want = Math.min(this.total - 1, Math.floor(p * this.total));
      let seen = 0;
      for (const k of keys) {
        seen += this.counts.get(k) ?? 0;
        if (seen > want) return k;
      }
      return this.max;
    };
    return [at(0.5), at(0.9), at(0.99), this.max];
  }
}
