import { LRUCache } from 'lru-cache';
import type { IndexReader } from '../index/index-reader.js';
import type { PageNeed } from '../splits/scan-reads.js';
import { drive, finish, ScanAborted, type Holding, type Steps } from '../util/steps.js';
import type { Placement, StreamSpec } from './stream-spec.js';

/** A value the cache holds: made by a scan shared by whoever asks for it while it runs. */
export interface ShareNeed {
  readonly share: string;
  readonly make: () => CatalogSteps<unknown>;
  readonly bytes: (v: unknown) => number;
}

/** A stream about to scan asks to be admitted first (server.plan_budget_bytes): refused, it scans nothing. */
export interface AdmitNeed {
  readonly admit: { readonly spec: StreamSpec; readonly placement: Placement };
}

export type CatalogNeed = PageNeed | ShareNeed | AdmitNeed;
/** A sliced scan of the catalog (util/steps.ts). */
export type CatalogSteps<T> = Steps<T, CatalogNeed>;

export interface ScanOptions {
  /** Stops the scan (the stream's call closed): ScanAborted. */
  readonly signal?: AbortSignal;
  /** Admits a stream before it scans (throws to refuse it). */
  readonly admit?: (spec: StreamSpec, placement: Placement) => void;
  /** Called after each event-loop turn the scan gave away (tests count them). */
  readonly onTurn?: () => void;
  /** Gives the event loop a turn (default setImmediate), after slices of `sliceMs` (default SLICE_MS). */
  readonly pause?: () => Promise<void>;
  readonly sliceMs?: number;
}

/** One cached value, how to count its bytes, and what it was last counted at. */
interface Held {
  readonly value: unknown;
  readonly bytes: () => number;
  readonly counted: number;
}

/** A shared scan in flight: its end, its stop, and how many callers wait for it. */
interface Making {
  readonly done: Promise<void>;
  readonly stop: AbortController;
  waiters: number;
}

const NOTHING: Holding = { release: () => undefined };

/**
 * The catalog's values keyed by what clients choose (resolved held-out sets, their guards, train
 * sizes, servability, evaluation items): one LRU cache bounded by the bytes its entries hold
 * (stream.catalog_cache_bytes), each entry counted again at each use (guards grow as shards are
 * classified). A value made by a scan is made once however many opens ask for it at once: the
 * first starts the scan between event-loop turns, the others wait for it, and it stops when every
 * one of them has gone (their calls closed). An evicted entry is made again when next needed, the
 * same as before; streams keep the ones they hold.
 */
export class CatalogCache {
  private readonly memo: LRUCache<string, Held>;
  private readonly making = new Map<string, Making>();
  private started = 0;

  constructor(
    maxBytes: number,
    private readonly reader: IndexReader,
  ) {
    this.memo = new LRUCache<string, Held>({ maxSize: maxBytes, sizeCalculation: (h) => h.counted });
  }

  /** Bytes the entries are counted at (at most the bound). */
  get bytes(): number {
    return this.memo.calculatedSize;
  }

  /** Shared scans started since the catalog opened (tests: concurrent identical opens scan once). */
  get scans(): number {
    return this.started;
  }

  /** Shared scans running now. */
  get scanning(): number {
    return this.making.size;
  }

  /** The value under `key`, counted again (it may have grown), or undefined. */
  private lookup<T>(key: string): T | undefined {
    const had = this.memo.get(key);
    if (!had) return undefined;
    const now = Math.max(1, Math.ceil(had.bytes()));
    if (now !== had.counted) this.memo.set(key, { ...had, counted: now });
    return had.value as T;
  }

  private store<T>(key: string, value: T, bytes: (v: T) => number): void {
    const count = (): number => bytes(value);
    this.memo.set(key, { value, bytes: count, counted: Math.max(1, Math.ceil(count())) });
  }

  /** The cached value under `key`, made at once if absent (no scan). */
  cached<T>(key: string, make: () => T, bytes: (v: T) => number): T {
    const had = this.lookup<T>(key);
    if (had !== undefined) return had;
    const value = make();
    this.store(key, value, bytes);
    return value;
  }

  /**
   * The cached value under `key`, made by a scan if absent: run by `scan`, the scan is shared with
   * every caller asking for it meanwhile; run by `finish`, it is made here.
   */
  *steps<T>(key: string, make: () => CatalogSteps<T>, bytes: (v: T) => number): CatalogSteps<T> {
    const had = this.lookup<T>(key);
    if (had !== undefined) return had;
    yield { need: { share: key, make, bytes: bytes as (v: unknown) => number } };
    const shared = this.lookup<T>(key);
    if (shared !== undefined) return shared;
    const value = yield* make();
    this.store(key, value, bytes);
    return value;
  }

  /** Runs a catalog scan between event-loop turns, reading no page on the spot. */
  scan<T>(g: CatalogSteps<T>, opts: ScanOptions = {}): Promise<T> {
    return drive(g, {
      signal: opts.signal,
      onTurn: opts.onTurn,
      pause: opts.pause,
      sliceMs: opts.sliceMs,
      run: (fn) => this.reader.strictly(fn),
      need: async (n): Promise<Holding> => {
        if ('pages' in n) return this.reader.prefetch(n.pages, 'miss');
        if ('admit' in n) opts.admit?.(n.admit.spec, n.admit.placement);
        else await this.share(n, opts);
        return NOTHING;
      },
    });
  }

  /** Runs a catalog scan at once, reading pages where they are missed (tools, tests, build workers). */
  run<T>(g: CatalogSteps<T>): T {
    return finish(g);
  }

  /** Waits for the shared scan making `n.share` (starting it if none runs); leaving stops it once nobody waits. */
  private async share(n: ShareNeed, opts: ScanOptions): Promise<void> {
    if (this.memo.has(n.share)) return;
    let m = this.making.get(n.share);
    if (!m) {
      const stop = new AbortController();
      this.started++;
      const done = this.scan(n.make(), { signal: stop.signal, onTurn: opts.onTurn }).then((v) =>
        this.store(n.share, v, n.bytes),
      );
      const made: Making = { done, stop, waiters: 0 };
      m = made;
      this.making.set(n.share, made);
      done.then(
        () => this.making.get(n.share) === made && this.making.delete(n.share),
        () => this.making.get(n.share) === made && this.making.delete(n.share),
      );
    }
    const made = m;
    made.waiters++;
    const { signal } = opts;
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        made.done,
        new Promise<never>((_, reject) => {
          if (!signal) return;
          onAbort = () => reject(new ScanAborted());
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      // The last caller gone: the scan stops, and the next caller starts afresh.
      if (--made.waiters === 0 && this.making.get(n.share) === made) {
        this.making.delete(n.share);
        made.stop.abort();
      }
    }
  }
}
