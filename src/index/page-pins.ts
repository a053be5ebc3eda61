import { ByteBudget } from './read-budget.js';

/** Pages held in memory for a planned step until `release` (after its batch is built). */
export interface Residency {
  /** Bytes of the pages this residency was the first to hold (what it counts against `index.prefetch_bytes`). */
  readonly bytes: number;
  /** Pages it had to read (the others were resident already). */
  readonly read: number;
  release(): void;
}

/**
 * Pages held for planned steps, by cache key, with how many residencies hold each, besides the
 * LRU (which may let a held page go: it is still served from here). Their bytes count against
 * `index.prefetch_bytes`, reserved all at once before anything is read, so steps waiting for
 * room never hold part of it. Why its own file: the counting (a page held by two steps counts
 * once, a page another step let go meanwhile counts now) is independent of how pages are read.
 */
export class PagePins<P> {
  private readonly pinned = new Map<number, { page: P; pins: number; bytes: number }>();
  private readonly budget: ByteBudget;

  constructor(prefetchBytes: number) {
    this.budget = new ByteBudget(prefetchBytes);
  }

  /** A held page, if it is held. */
  get(key: number): P | undefined {
    return this.pinned.get(key)?.page;
  }

  /** Bytes held now. */
  get held(): number {
    return this.budget.held;
  }

  /**
   * Holds the pages of `want` (key → bytes in memory): `resident` gives a page in memory (held
   * where it is), `read` reads the others (one promise per key, in order). A failed read releases
   * everything and rejects with its error.
   */
  async hold(
    want: ReadonlyMap<number, number>,
    resident: (key: number) => P | undefined,
    read: (keys: number[]) => Promise<P>[],
  ): Promise<Residency> {
    let need = 0;
    for (const [key, bytes] of want) if (!this.pinned.has(key)) need += bytes;
    await this.budget.reserve(need);
    let left = need;
    const held: number[] = [];
    const pin = (key: number, page: P, bytes: number): void => {
      const had = this.pinned.get(key);
      if (had) had.pins++;
      else {
        this.pinned.set(key, { page, pins: 1, bytes });
        left -= bytes;
      }
      held.push(key);
    };
    const release = (): void => {
      let freed = Math.max(0, left);
      for (const key of held.splice(0)) {
        const had = this.pinned.get(key)!;
        if (--had.pins > 0) continue;
        this.pinned.delete(key);
        freed += had.bytes;
      }
      left = 0;
      this.budget.release(freed);
    };
    const missing: number[] = [];
    try {
      for (const [key, bytes] of want) {
        const v = resident(key) ?? this.get(key);
        if (v) pin(key, v, bytes);
        else missing.push(key);
      }
      const reads = read(missing).map((p, k) => p.then((page) => pin(missing[k]!, page, want.get(missing[k]!)!)));
      const results = await Promise.allSettled(reads);
      const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      release();
      throw err;
    }
    // Bytes reserved for pages another step pinned meanwhile go back now; pages another step
    // unpinned meanwhile (so not reserved above) are counted now.
    if (left > 0) this.budget.release(left);
    else if (left < 0) this.budget.take(-left);
    left = 0;
    return { bytes: need, read: missing.length, release };
  }
}
