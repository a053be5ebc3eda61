import type { Segment } from '../pack/segment-layout.js';
import type { WireStats } from './wire-types.js';

/** One global train step as planned once for all ranks of a job. */
export interface PlannedStep {
  /** world_size × batch_size rows; rank r's batch is rows [r·B, (r+1)·B). */
  readonly rows: Segment[][];
  /** The resume token after this step (rank-agnostic: rank and world size are per connection). */
  readonly token: Buffer;
  readonly stats: WireStats;
}

/** A step a rank is planning now (its pages being read): ranks arriving meanwhile wait for it. */
interface Flight {
  readonly owner: object;
  readonly landed: Promise<void>;
  readonly land: () => void;
}

interface Entry {
  readonly step: PlannedStep;
  readonly worldSize: number;
  /** Rows × seq_len: what the step's segments cover at most. */
  readonly tokens: number;
  taken: number;
}

/** Rows kept at most: ~100 KB of plan per 64 packed rows, so a few tens of MB. */
const MAX_ROWS = 16_384;
/**
 * Row tokens kept at most (rows × seq_len): a plan holds about half a byte per token, so ~130 MB.
 * Rows alone did not bound it: 16,384 rows of seq_len 131,072 held 1 GB for ranks that never came.
 */
const MAX_TOKENS = 2 ** 28;

/**
 * Global train steps shared by the rank streams of one job. Every rank's stream walks the same
 * global stream and used to plan every step in full (world_size × batch_size rows) to keep its
 * own slice: with 8 ranks, 8 × the planning, token and stats work per delivered batch. A step is
 * keyed by a digest of the resume token before it, which encodes everything the plan depends on
 * (index, held-out set, spec, world size, step, sampler, walker, packing window, pending
 * updates), so streams share a step exactly when they would have planned the same one.
 *
 * An entry leaves when all its ranks took it; ranks served by other replicas never take theirs,
 * so the cache also forgets its oldest entries beyond `maxRows` rows or `maxTokens` row tokens in all
 * (a step larger than either is not kept). A rank that finds
 * nothing plans the step itself, so eviction costs time, never correctness.
 *
 * A rank that begins a step no one planned claims it until it offers it (`put`): planning reads
 * the step's cold pages, and a rank arriving meanwhile waits for that plan (`inFlight`) instead
 * of planning the same step a second time. A claim whose owner gives up on the step (a rewind to
 * another state, the stream closed) is let go, and a rank waiting for it plans the step itself.
 */
export class PlanCache {
  private readonly entries = new Map<string, Entry>();
  private readonly flights = new Map<string, Flight>();
  private rows = 0;
  private tokens = 0;
  readonly counts = { hits: 0, misses: 0 };

  constructor(
    private readonly maxRows = MAX_ROWS,
    private readonly maxTokens = MAX_TOKENS,
  ) {}

  /**
   * The step planned from state `key`, counted as taken by one rank; undefined if not cached. A
   * miss is counted when the rank's own plan of the step is offered (`put`): a rank whose planning
   * stopped at a page not in memory looks again, and may then find the step another rank planned.
   */
  take(key: string): PlannedStep | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.counts.hits++;
    if (++e.taken >= e.worldSize) this.remove(key, e);
    return e.step;
  }

  /** `owner` begins planning step `key` (after `take` found nothing): ranks asking `inFlight(key)` wait for it. */
  claim(key: string, owner: object): void {
    const had = this.flights.get(key);
    if (had?.owner === owner) return;
    // Another owner's claim is let go: its waiters look again (and find this one).
    had?.land();
    let land = (): void => undefined;
    const landed = new Promise<void>((resolve) => (land = resolve));
    this.flights.set(key, {
      owner,
      landed,
      land: () => {
        if (this.flights.get(key)?.landed === landed) this.flights.delete(key);
        land();
      },
    });
  }

  /** Resolves once another owner's plan of step `key` in flight is offered or given up; undefined when none is. */
  inFlight(key: string, owner: object): Promise<void> | undefined {
    const f = this.flights.get(key);
    return f && f.owner !== owner ? f.landed : undefined;
  }

  /** Lets go of the claims of `owner` (its stream closed, or it went back to another state). */
  release(owner: object): void {
    for (const f of [...this.flights.values()]) if (f.owner === owner) f.land();
  }

  /** Offers a step this rank planned (and took) to the job's other ranks; `seqLen`: its rows' length. */
  put(key: string, step: PlannedStep, worldSize: number, seqLen: number): void {
    if (worldSize <= 1) return;
    this.counts.misses++;
    this.flights.get(key)?.land();
    const tokens = step.rows.length * seqLen;
    if (step.rows.length > this.maxRows || tokens > this.maxTokens) return;
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    this.entries.set(key, { step, worldSize, tokens, taken: 1 });
    this.rows += step.rows.length;
    this.tokens += tokens;
    for (const [k, e] of this.entries) {
      if (this.rows <= this.maxRows && this.tokens <= this.maxTokens) break;
      this.remove(k, e);
    }
  }

  private remove(key: string, e: Entry): void {
    this.entries.delete(key);
    this.rows -= e.step.rows.length;
    this.tokens -= e.tokens;
  }

  /** Steps and rows held. */
  get size(): { steps: number; rows: number } {
    return { steps: this.entries.size, rows: this.rows };
  }
}
