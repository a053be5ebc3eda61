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
 * Units sit in slots (as many as units pending: memory follows the window, not how long a unit
 * waits), chained oldest to newest and, per length, oldest to newest. Why a bucket needs no
 * unlinking from its middle: it holds its units in draw order, and a unit is only ever taken as
 * its bucket's oldest (best fit takes the bucket's head; the oldest pending unit of all is the
 * oldest of its bucket too).
 */
export class PendingUnits {
  private slots: (Segment | undefined)[] = [];
  /** Per slot: the next unit of the same length, the next newer and older unit, or NONE; free slots chain through `newer`. */
  private nextSame = new Int32Array(0);
  private newer = new Int32Array(0);
  private older = new Int32Array(0);
  private oldest = NONE;
  private newest = NONE;
  private free = NONE;
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

  /** Slots allocated: at most twice the most units ever pending at once. */
  get capacity(): number {
    return this.slots.length;
  }

  /** The pending units, oldest first. */
  list(): Segment[] {
    const out: Segment[] = [];
    for (let s = this.oldest; s !== NONE; s = this.newer[s]!) out.push(this.slots[s]!);
    return out;
  }

  push(unit: Segment): void {
    const len = unit.length;
    if (!(Number.isInteger(len) && len >= 0))
      throw new RangeError(`a packing unit's length must be a non-negative integer, got ${len}`);
    if (len >= this.first.length) this.rebuild(this.slots.length, len + 1);
    if (this.free === NONE) this.grow();
    const slot = this.free;
    this.free = this.newer[slot]!;
    this.slots[slot] = unit;
    this.nextSame[slot] = NONE;
    this.newer[slot] = NONE;
    this.older[slot] = this.newest;
    if (this.newest === NONE) this.oldest = slot;
    else this.newer[this.newest] = slot;
    this.newest = slot;
    const prev = this.last[len]!;
    if (prev === NONE) {
      this.first[len] = slot;
      this.lengths.add(len);
    } else {
      this.nextSame[prev] = slot;
    }
    this.last[len] = slot;
    this.count++;
  }

  /** Removes and returns the oldest pending unit (undefined if there is none). */
  takeOldest(): Segment | undefined {
    return this.oldest === NONE ? undefined : this.take(this.slots[this.oldest]!.length);
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
    const o = this.older[slot]!;
    const n = this.newer[slot]!;
    if (o === NONE) this.oldest = n;
    else this.newer[o] = n;
    if (n === NONE) this.newest = o;
    else this.older[n] = o;
    this.slots[slot] = undefined;
    this.newer[slot] = this.free;
    this.free = slot;
    this.count--;
    return unit;
  }

  /** Twice the slots; the new ones join the free chain (slots in use keep their place). */
  private grow(): void {
    const had = this.slots.length;
    const cap = Math.max(1, had * 2);
    const widen = (a: Int32Array): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    [this.nextSame, this.newer, this.older] = [widen(this.nextSame), widen(this.newer), widen(this.older)];
    for (let s = had; s < cap; s++) this.slots.push(undefined);
    for (let s = cap - 1; s >= had; s--) {
      this.newer[s] = this.free;
      this.free = s;
    }
  }

  /** Fresh storage for at least `capacity` slots and lengths below `lengths`, the pending units put back in order. */
  private rebuild(capacity: number, lengths: number): void {
    const units = this.list();
    this.reset(capacity, Math.max(lengths, this.first.length));
    for (const u of units) this.push(u);
  }

  private reset(capacity: number, lengths: number): void {
    this.slots = [];
    this.nextSame = new Int32Array(0);
    this.newer = new Int32Array(0);
    this.older = new Int32Array(0);
    this.oldest = NONE;
    this.newest = NONE;
    this.free = NONE;
    this.count = 0;
    while (this.slots.length < capacity) this.grow();
    // Lengths grow by doubling too, so a stream rebuilds at most a few times.
    let n = 1;
    while (n < lengths) n *= 2;
    this.first = new Int32Array(n).fill(NONE);
    this.last = new Int32Array(n).fill(NONE);
    this.lengths = new LevelBitset(n);
  }
}
