import { ResourceExhaustedError } from '../errors.js';

/**
 * Word n-grams for text decontamination (FLAN / GPT-3 style). Text is normalized to words
 * (NFKC, lower case, runs of letters and digits; punctuation and spacing ignored), and every
 * window of N consecutive words of one field is hashed to 64 bits (two 32-bit polynomial lanes
 * over per-word FNV-1a hashes), so a table of held-out n-grams costs a fixed 12 bytes per slot
 * whatever the words. A field with fewer than N words has no n-gram and never matches.
 */

const WORD = /[\p{L}\p{N}]+/gu;
const BASE_LO = 0x01000193;
const BASE_HI = 0x5bd1e995;

/** FNV-1a over UTF-16 code units, with a lane seed. */
function wordHash(w: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** The normalized words of a text. */
export function normalizedWords(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(WORD) ?? [];
}

/** Calls `fn(lo, hi)` for the 64-bit hash of every n-word window of `text`, in order, until it returns true. */
export function forEachNgram(text: string, n: number, fn: (lo: number, hi: number) => boolean | void): void {
  const words = normalizedWords(text);
  if (n < 1 || words.length < n) return;
  const lo = words.map((w) => wordHash(w, 0x811c9dc5));
  const hi = words.map((w) => wordHash(w, 0x2f3e9b51));
  // B^(n-1) per lane, to drop the oldest word from the rolling hash.
  let topLo = 1;
  let topHi = 1;
  for (let i = 1; i < n; i++) {
    topLo = Math.imul(topLo, BASE_LO);
    topHi = Math.imul(topHi, BASE_HI);
  }
  let hLo = 0;
  let hHi = 0;
  for (let i = 0; i < words.length; i++) {
    if (i >= n) {
      hLo = (hLo - Math.imul(lo[i - n]!, topLo)) | 0;
      hHi = (hHi - Math.imul(hi[i - n]!, topHi)) | 0;
    }
    hLo = (Math.imul(hLo, BASE_LO) + lo[i]!) | 0;
    hHi = (Math.imul(hHi, BASE_HI) + hi[i]!) | 0;
    if (i >= n - 1 && fn(hLo, hHi) === true) return;
  }
}

/** N-gram hashes with their owners, in the order they were met (what a table is made from once its size is known). */
export class HashList {
  lo = new Int32Array(1024);
  hi = new Int32Array(1024);
  owner = new Int32Array(1024);
  length = 0;

  push(lo: number, hi: number, owner: number): void {
    if (this.length === this.lo.length) {
      const grow = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.lo = grow(this.lo);
      this.hi = grow(this.hi);
      this.owner = grow(this.owner);
    }
    this.lo[this.length] = lo;
    this.hi[this.length] = hi;
    this.owner[this.length++] = owner;
  }
}

/**
 * An open-addressing hash set of 64-bit n-gram hashes, each with an owner (an index the caller
 * chooses: the first held-out record that has it). Memory is 12 bytes per slot, at most twice the
 * n-grams held, and never more than `maxNgrams` n-grams (RESOURCE_EXHAUSTED past it). Made for
 * `expected` n-grams it never grows (and never rehashes) until it holds more.
 */
export class NgramTable {
  private lo: Int32Array;
  private hi: Int32Array;
  private owner: Int32Array;
  private used = 0;
  private readonly maxNgrams: number;

  constructor(maxNgrams: number, expected = 0) {
    this.maxNgrams = maxNgrams;
    // Slots: a power of two holding `expected` at most half full (no more than the cap needs).
    let slots = 1024;
    while (slots < 2 * Math.min(expected, maxNgrams + 1)) slots *= 2;
    this.lo = new Int32Array(slots);
    this.hi = new Int32Array(slots);
    this.owner = new Int32Array(slots).fill(-1);
  }

  get size(): number {
    return this.used;
  }

  get bytes(): number {
    return this.lo.byteLength + this.hi.byteLength + this.owner.byteLength;
  }

  private slot(lo: number, hi: number): number {
    const mask = this.lo.length - 1;
    let i = (Math.imul(lo ^ hi, 0x9e3779b1) >>> 0) & mask;
    while (this.owner[i] !== -1 && !(this.lo[i] === lo && this.hi[i] === hi)) i = (i + 1) & mask;
    return i;
  }

  /** Adds the n-gram unless present (the first owner stays). */
  add(lo: number, hi: number, owner: number): void {
    let i = this.slot(lo, hi);
    if (this.owner[i] !== -1) return;
    if (this.used >= this.maxNgrams)
      throw new ResourceExhaustedError(
        'held-out text n-grams (exclude_overlapping_text)',
        this.used + 1,
        this.maxNgrams,
      );
    if ((this.used + 1) * 2 > this.lo.length) {
      this.grow();
      i = this.slot(lo, hi);
    }
    this.lo[i] = lo;
    this.hi[i] = hi;
    this.owner[i] = owner;
    this.used++;
  }

  /** The owner of the n-gram, or -1. */
  ownerOf(lo: number, hi: number): number {
    return this.owner[this.slot(lo, hi)] ?? -1;
  }

  private grow(): void {
    const { lo, hi, owner } = this;
    this.lo = new Int32Array(lo.length * 2);
    this.hi = new Int32Array(lo.length * 2);
    this.owner = new Int32Array(lo.length * 2).fill(-1);
    for (let i = 0; i < lo.length; i++) {
      if (owner[i] === -1) continue;
      const j = this.slot(lo[i]!, hi[i]!);
      this.lo[j] = lo[i]!;
      this.hi[j] = hi[i]!;
      this.owner[j] = owner[i]!;
    }
  }
}
