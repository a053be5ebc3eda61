import type { PolicyView } from '../stream/stream-plan.js';
import type { StreamSession } from '../stream/stream-session.js';

/** What the monitor reads of a stream (a StreamSession, or a stream built on a worker). */
export type MonitoredStream = Pick<StreamSession, 'spec' | 'placement' | 'policyView'>;
import { domainProportions, type DomainProportions } from '../stream/stream-stats.js';
import type { WireBatch, WireStats } from '../stream/wire-types.js';

/** One point of a stream's history on the status page. */
export interface MonitorSample extends Readonly<DomainProportions> {
  /** Milliseconds since the epoch. */
  readonly t: number;
  /** Global step of the last batch in the interval. */
  readonly step: number;
  /** Non-pad / all token cells of the interval's batches; null for unpacked evaluation items. */
  readonly fill: number | null;
  readonly tokensPerSecond: number;
  readonly batchesPerSecond: number;
}

export interface StreamView {
  readonly id: string;
  readonly split: string;
  readonly packing: string;
  readonly batchSize: number;
  readonly seqLen: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly openedAt: number;
  readonly batches: number;
  /** Non-pad tokens sent. */
  readonly tokens: number;
  readonly step: number | null;
  /** Per domain (GetCorpusInfo's domain order), from the last batch: see DomainProportions. */
  readonly target: readonly number[];
  readonly realized: readonly number[];
  readonly sinceUpdate: readonly number[];
  readonly sinceUpdateStep: number;
  readonly recent: readonly number[];
  readonly windowStartStep: number;
  readonly samples: readonly MonitorSample[];
  /** The stream's closed-loop policy (null: static); its weights over time are the target lines. */
  readonly policy: PolicyView | null;
}

/** A fixed-capacity ring: the newest `capacity` items, oldest first. */
export class Ring<T> {
  private readonly items: T[] = [];
  private head = 0;
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity);
  }

  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.head] = item;
      this.head = (this.head + 1) % this.capacity;
    }
  }

  toArray(): T[] {
    return [...this.items.slice(this.head), ...this.items.slice(0, this.head)];
  }
}

export interface MonitorOptions {
  /** Samples kept per stream. */
  readonly capacity?: number;
  /** Shortest time between two samples; batches in between are aggregated. */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

interface Tracked {
  readonly id: string;
  readonly session: MonitoredStream;
  readonly openedAt: number;
  readonly ring: Ring<MonitorSample>;
  batches: number;
  tokens: number;
  step: number | null;
  /** The last batch's stats; proportions are derived from them only when sampled or viewed. */
  stats: WireStats | null;
  /** The open interval since the last sample. */
  since: number;
  used: number;
  cells: number;
  count: number;
}

/**
 * Per-stream history for the live status page (/status.json): a small ring buffer of samples
 * per open stream, taken at most every `intervalMs` so a fast stream costs O(1) per batch and a
 * bounded amount of memory. Fed by the gRPC adapter as batches are handed to the transport.
 */
export class StreamMonitor {
  private readonly streams = new Map<string, Tracked>();
  private readonly capacity: number;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(opts: MonitorOptions = {}) {
    this.capacity = opts.capacity ?? 240;
    this.intervalMs = opts.intervalMs ?? 500;
    this.now = opts.now ?? Date.now;
  }

  open(id: string, session: MonitoredStream): void {
    const t = this.now();
    this.streams.set(id, {
      id,
      session,
      openedAt: t,
      ring: new Ring(this.capacity),
      batches: 0,
      tokens: 0,
      step: null,
      stats: null,
      since: t,
      used: 0,
      cells: 0,
      count: 0,
    });
  }

  record(id: string, b: WireBatch): void {
    const s = this.streams.get(id);
    if (!s) return;
    let used = 0;
    for (const n of b.segLength) used += n;
    const unpacked = b.examples.length > 0;
    if (unpacked) for (const e of b.examples) used += (e.promptTokens.length + e.answerTokens.length) / 4;
    s.batches++;
    s.tokens += used;
    s.step = b.step;
    s.stats = b.stats;
    s.used += used;
    s.cells += unpacked ? 0 : b.batchSize * b.seqLen;
    s.count++;
    const t = this.now();
    // The first batch is sampled at once so a new stream shows up on the chart immediately.
    if (s.batches > 1 && t - s.since < this.intervalMs) return;
    const seconds = Math.max(t - s.since, 1) / 1000;
    s.ring.push({
      t,
      step: b.step,
      ...domainProportions(b.stats),
      fill: s.cells > 0 ? s.used / s.cells : null,
      tokensPerSecond: s.used / seconds,
      batchesPerSecond: s.count / seconds,
    });
    s.since = t;
    s.used = 0;
    s.cells = 0;
    s.count = 0;
  }

  close(id: string): void {
    this.streams.delete(id);
  }

  get size(): number {
    return this.streams.size;
  }

  snapshot(): StreamView[] {
    return [...this.streams.values()].map((s) => ({
      id: s.id,
      split: s.session.spec.split,
      packing: s.session.spec.packing,
      batchSize: s.session.spec.batchSize,
      seqLen: s.session.spec.seqLen,
      rank: s.session.placement.rank,
      worldSize: s.session.placement.worldSize,
      openedAt: s.openedAt,
      batches: s.batches,
      tokens: s.tokens,
      step: s.step,
      ...(s.stats
        ? domainProportions(s.stats)
        : { target: [], realized: [], sinceUpdate: [], sinceUpdateStep: 0, recent: [], windowStartStep: 0 }),
      samples: s.ring.toArray(),
      policy: s.session.policyView() ?? null,
    }));
  }

  /** The policy of every open stream that has one, by stream id (for /metrics). */
  policies(): { id: string; view: PolicyView }[] {
    return [...this.streams.values()].flatMap((s) => {
      const view = s.step === null ? undefined : s.session.policyView();
      return view ? [{ id: s.id, view }] : [];
    });
  }
}
