import { LevelBitset } from '../util/level-bitset.js';
import type { Segment } from './segment-layout.js';

const NONE = -1;

/**
 * The best-fit packer's pending units, kept two ways at once: in the order they were drawn (the
 * oldest starts a row, and the order rides in resume tokens), and in buckets by length, each
 * oldest first, with a bitset of the lengths present. So "the largest unit that fits in `free`
 * tokens, the oldest among equals" is one bitset query and a bucket's head, where scanning the
 * whole window (256 units by default) for it, and shifting the window down after each pick, cost
 * a few hundred steps per packed example. Picks are exactly the scan's: the same unit every time.
 *
 * Units sit in a ring of slots by draw number; a picked unit leaves an empty slot until the
 * oldest passes it. Why buckets need no unlinking from the middle: a bucket holds its units in
 * draw order, and a unit is only ever taken as its bucket's oldest (best fit takes the bucket's
 * head; the oldest pending unit of all is the oldest of its bucket too).
 */
export class PendingUnits {
  private slots: (Segment | undefined)[] = [];
  /** Per slot: the slot of the next unit of the same length, or NONE. */
  private nextSame = new Int32Array(0);
  private mask = 0;
  /** Draw numbers of the oldest pending unit (or `tail` if none) and of the next unit to come. */
  private head = 0;
  private tail = 0;
  private count = 0;
  /** Per length: the slots of the oldest and the newest pending unit of that length. */
  private first = new Int32Array(0);
  private last = new Int32Array(0);
  private lengths = new LevelBitset(1);

  constructor(units: readonly Segment[] = [], capacity = 64) {
    this.reset(capacity, 1);
    for (const u of units) this.push(u);
  }

  get size(): number {
    return this.count;
  }

  /** The pending units, oldest first. */
  list(): Segment[] {
    const out: Segment[] = [];
    for (let s = this.head; s < this.tail; s++) {
      const u = this.slots[s & this.mask];
      if (u) out.push(u);
    }
    return out;
  }

  push(unit: Segment): void {
    const len = unit.length;
    if (!(Number.isInteger(len) && len >= 0)) throw new RangeError(`a packing unit's length must be a non-negative integer, got ${len}`);
    if (this.tail - this.head === this.slots.length || len >= this.first.length) {
      this.rebuild(this.tail - this.head === this.slots.length ? this.slots.length * 2 : this.slots.length, len + 1);
    }
    const slot = this.tail & this.mask;
    this.slots[slot] = unit;
    this.nextSame[slot] = NONE;
    const prev = this.last[len]!;
    if (prev === NONE) {
      this.first[len] = slot;
      this.lengths.add(len);
    } else {
      this.nextSame[prev] = slot;
    }
    this.last[len] = slot;
    this.tail++;
    this.count++;
  }

  /** Removes and returns the oldest pending unit (undefined if there is none). */
  takeOldest(): Segment | undefined {
    if (this.count === 0) return undefined;
    return this.take(this.slots[this.head & this.mask]!.length);
  }

  /** Removes and returns the largest unit of length 1 … free, the oldest among equals (undefined if none fits). */
  takeBestFit(free: number): Segment | undefined {
    const len = this.lengths.atMost(free);
    return len > 0 ? this.take(len) : undefined;
  }

  /** Removes the oldest unit of length `len` (there is one). */
  private take(len: number): Segment {
    const slot = this.first[len]!;
    const unit = this.slots[slot]!;
    const next = this.nextSame[slot]!;
    this.first[len] = next;
    if (next === NONE) {
      this.last[len] = NONE;
      this.lengths.delete(len);
    }
    this.slots[slot] = undefined;
    this.count--;
    while (this.head < this.tail && this.slots[this.head & this.mask] === undefined) this.head++;
    return unit;
  }

  /** Fresh storage for at least `capacity` slots and lengths below `lengths`, the pending units put back in order. */
  private rebuild(capacity: number, lengths: number): void {
    const units = this.list();
    this.reset(capacity, Math.max(lengths, this.first.length));
    for (const u of units) this.push(u);
  }

  private reset(capacity: number, lengths: number): void {
    let cap = 1;
    while (cap < capacity) cap *= 2;
    this.slots = new Array<Segment | undefined>(cap).fill(undefined);
    this.nextSame = new Int32Array(cap);
    this.mask = cap - 1;
    this.head = 0;
    this.tail = 0;
    this.count = 0;
    // Lengths grow by doubling too, so a stream rebuilds at most a few times.
    let n = 1;
    while (n < lengths) n *= 2;
    this.first = new Int32Array(n).fill(NONE);
    this.last = new Int32Array(n).fill(NONE);
    this.lengths = new LevelBitset(n);
  }
}
