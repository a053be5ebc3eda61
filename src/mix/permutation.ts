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

const ROUNDS = 4;

export class Permutation {
  readonly n: number;
  private readonly halfBits: number;
  private readonly mask: number;
  private readonly keys: number[];

  constructor(n: number, ...key: number[]) {
    this.n = n;
    let bits = 2;
    while (2 ** bits < n) bits += 2;
    this.halfBits = bits / 2;
    this.mask = 2 ** this.halfBits - 1;
    this.keys = Array.from({ length: ROUNDS }, (_, r) => hashInts(...key, r));
  }

  private round(x: number): number {
    let l = Math.floor(x / 2 ** this.halfBits);
    let r = x & this.mask;
    for (const k of this.keys) {
      const next = (l ^ (mix32(r ^ k) & this.mask)) >>> 0;
      l = r;
      r = next;
    }
    return l * 2 ** this.halfBits + r;
  }

  /** The i-th element of the permutation, 0 ≤ i < n. */
  at(i: number): number {
    let x = i;
    do x = this.round(x);
    while (x >= this.n);
    return x;
  }
}
