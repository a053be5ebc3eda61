/**
 * Seeded permutations of [0, n) in O(1) memory: a balanced Feistel network over the smallest
 * even-bit domain ≥ n, with cycle walking to stay inside [0, n). Each (seed, task, epoch) gives
 * an independent permutation, so 100M-record tasks never materialize a shuffle.
 */

/** 32-bit avalanche mix (murmur3 finalizer). */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export function hashInts(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) h = mix32(h ^ mix32((x >>> 0) + Math.floor(x / 0x100000000)));
  return h;
}

/** Domains up to 2^30 (every task of a real index) fit int32 arithmetic: the fast path below. */
const INT_BITS = 30;

export class Permutation {
  readonly n: number;
  private readonly halfBits: number;
  private readonly half: number;
  private readonly mask: number;
  private readonly small: boolean;
  // The four round keys (a 4-round Feistel network) as fields, not an array: at() runs once per drawn example (several rounds each).
  private readonly k0: number;
  private readonly k1: number;
  private readonly k2: number;
  private readonly k3: number;

  constructor(n: number, ...key: number[]) {
    this.n = n;
    let bits = 2;
    while (2 ** bits < n) bits += 2;
    this.halfBits = bits / 2;
    this.half = 2 ** this.halfBits;
    this.mask = this.half - 1;
    this.small = bits <= INT_BITS;
    this.k0 = hashInts(...key, 0);
    this.k1 = hashInts(...key, 1);
    this.k2 = hashInts(...key, 2);
    this.k3 = hashInts(...key, 3);
  }

  /** One pass of the Feistel network, in float arithmetic (domains over 2^30). */
  private round(x: number): number {
    let l = Math.floor(x / this.half);
    let r = x & this.mask;
    for (const k of [this.k0, this.k1, this.k2, this.k3]) {
      const next = (l ^ (mix32(r ^ k) & this.mask)) >>> 0;
      l = r;
      r = next;
    }
    return l * this.half + r;
  }

  /**
   * The same pass in int32 arithmetic, unrolled (the same values as round() wherever both apply:
   * halves stay below 2^15, so no step overflows).
   */
  private roundInt(x: number): number {
    const h = this.halfBits;
    const m = this.mask;
    let l = x >>> h;
    let r = x & m;
    let t = l ^ (mix32(r ^ this.k0) & m);
    l = r;
    r = t;
    t = l ^ (mix32(r ^ this.k1) & m);
    l = r;
    r = t;
    t = l ^ (mix32(r ^ this.k2) & m);
    l = r;
    r = t;
    t = l ^ (mix32(r ^ this.k3) & m);
    return (r << h) | t;
  }

  /** One inverse pass of the network (the rounds undone in reverse key order), in float arithmetic. */
  private unround(y: number): number {
    let l = Math.floor(y / this.half);
    let r = y % this.half;
    for (const k of [this.k3, this.k2, this.k1, this.k0]) {
      const prev = (r ^ (mix32(l ^ k) & this.mask)) >>> 0;
      r = l;
      l = prev;
    }
    return l * this.half + r;
  }

  /**
   * Where x sits in the permutation: the i with at(i) = x, 0 ≤ x < n. Cycle walking inverts by
   * walking the inverse network until it lands inside [0, n) again.
   */
  indexOf(x: number): number {
    let i = x;
    do i = this.unround(i);
    while (i >= this.n);
    return i;
  }

  /** The i-th element of the permutation, 0 ≤ i < n. */
  at(i: number): number {
    let x = i;
    if (this.small) {
      do x = this.roundInt(x);
      while (x >= this.n);
      return x;
    }
    do x = this.round(x);
    while (x >= this.n);
    return x;
  }
}
