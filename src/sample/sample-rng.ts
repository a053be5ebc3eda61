/**
 * Seeded, platform-independent randomness for the synthetic sample corpus. Never uses Math.random
 * or the clock: the same seed always gives the same corpus, byte for byte.
 */

/** murmur3 finaliser: a good 32-bit avalanche mix. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Hash of two 32-bit integers (order-sensitive). */
export function hash2(a: number, b: number): number {
  return mix32(mix32(0x9e3779b9 ^ mix32((a >>> 0) + 0x7f4a7c15)) ^ mix32((b >>> 0) + 0x7f4a7c15));
}

/** Hash of several 32-bit integers (order-sensitive); hashInts(a, b) === hash2(a, b). */
export function hashInts(...xs: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) h = mix32(h ^ mix32((x >>> 0) + 0x7f4a7c15));
  return h;
}

/** FNV-1a over a string's UTF-16 code units, finalised with mix32. */
export function hashString(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return mix32(h);
}

/** sfc32: small, fast, 128-bit state; good enough for synthetic data. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    // Accept any JS number as a seed: fold its high bits in too.
    const base = hash2(hash2(seed >>> 0, Math.floor(Math.abs(seed) / 0x100000000)), stream);
    this.a = hash2(base, 1);
    this.b = hash2(base, 2);
    this.c = hash2(base, 3);
    this.d = 1;
    for (let i = 0; i < 8; i++) this.u32();
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.u32() / 0x100000000;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(list: readonly T[]): T {
    if (list.length === 0) throw new Error('pick from an empty list');
    return list[this.int(list.length)] as T;
  }

  /** Fisher–Yates in place (arrays and typed arrays). */
  shuffle<A extends { length: number; [i: number]: unknown }>(arr: A): A {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex32(n: number): string {
  return (
    (HEX[(n >>> 24) & 255] ?? '') + (HEX[(n >>> 16) & 255] ?? '') + (HEX[(n >>> 8) & 255] ?? '') + (HEX[n & 255] ?? '')
  );
}

/**
 * Unique, random-looking UUID-shaped strings (version-4 layout). The last 48 bits are a bijective
 * scramble (4-round Feistel network) of the record index, so two indices never collide; the rest
 * comes from the Rng.
 */
export class UuidMaker {
  private readonly keys: readonly number[];

  constructor(key: number) {
    this.keys = [0, 1, 2, 3].map((round) => hashInts(key, round));
  }

  make(rng: Rng, index: number): string {
    let l = Math.floor(index / 0x1000000) & 0xffffff;
    let r = index & 0xffffff;
    for (const k of this.keys) {
      const t = r;
      r = (l ^ mix32(r ^ k)) & 0xffffff;
      l = t;
    }
    const a = hex32(rng.u32());
    const b = hex32(rng.u32());
    const c = hex32((rng.u32() & 0x3fff) | 0x8000);
    const tail = hex32(l).slice(2) + hex32(r).slice(2);
    return `${a}-${b.slice(0, 4)}-4${b.slice(5)}-${c.slice(4)}-${tail}`;
  }
}
