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
 * Which part of `index.prefetch_bytes` a hold counts against, and how it gets room:
 * - `batch`: the pages a planned batch is built from; a step waits until its pages fit;
 * - `plan`: the record-table pages planning reads ahead (a quarter of the limit); never waits:
 *   the caller holds only what `room` says fits, so planning never waits on a batch and a batch
 *   never waits on planning (each share is deadlock-free on its own, see record-pages.ts);
 * - `miss`: a page planning asked for and did not find, held in the planning share without
 *   waiting when it fits there (ShardPages.prefetch reads it into the cache only when it does not).
 */
export type HoldKind = 'batch' | 'plan' | 'miss';

/** The planning share of `index.prefetch_bytes` (its record-table pages are small: a few hundred KB a step). */
const PLAN_SHARE = 4;

/**
 * Pages held for planned steps, by cache key, with how many residencies hold each, besides the
 * LRU (which may let a held page go: it is still served from here). Their bytes count against
 * `index.prefetch_bytes`, reserved all at once before anything is read, so steps waiting for
 * room never hold part of it. Why its own file: the counting (a page held by two steps counts
 * once, against the share of the first to hold it; a page another step let go meanwhile counts
 * now) is independent of how pages are read.
 */
export class PagePins<P> {
  private readonly pinned = new Map<number, { page: P; pins: number; bytes: number; budget: ByteBudget }>();
  private readonly batch: ByteBudget;
  private readonly plan: ByteBudget;

  constructor(prefetchBytes: number) {
    const plan = Math.max(1, Math.floor(prefetchBytes / PLAN_SHARE));
    this.plan = new ByteBudget(plan);
    this.batch = new ByteBudget(Math.max(1, prefetchBytes - plan));
  }

  /** A held page, if it is held. */
  get(key: number): P | undefined {
    return this.pinned.get(key)?.page;
  }

  /** Bytes held now. */
  get held(): number {
    return this.batch.held + this.plan.held;
  }

  /** Bytes planning may still hold without waiting. */
  get planRoom(): number {
    return this.plan.room;
  }

  /** Bytes of `want` not held yet (what holding it would count). */
  unheld(want: ReadonlyMap<number, number>): number {
    let need = 0;
    for (const [key, bytes] of want) if (!this.pinned.has(key)) need += bytes;
    return need;
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
    kind: HoldKind = 'batch',
  ): Promise<Residency> {
    const budget = kind === 'batch' ? this.batch : this.plan;
    const need = this.unheld(want);
    if (kind === 'batch') await budget.reserve(need);
    else budget.take(need);
    let left = need;
    const held: number[] = [];
    const pin = (key: number, page: P, bytes: number): void => {
      const had = this.pinned.get(key);
      if (had) had.pins++;
      else {
        this.pinned.set(key, { page, pins: 1, bytes, budget });
        left -= bytes;
      }
      held.push(key);
    };
    const release = (): void => {
      budget.release(Math.max(0, left));
      left = 0;
      for (const key of held.splice(0)) {
        const had = this.pinned.get(key)!;
        if (--had.pins > 0) continue;
        this.pinned.delete(key);
        had.budget.release(had.bytes);
      }
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
    if (left > 0) budget.release(left);
    else if (left < 0) budget.take(-left);
    left = 0;
    return { bytes: need, read: missing.length, release };
  }
}
