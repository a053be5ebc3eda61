import type { RecordSubset } from '../mix/sparse-walk.js';
import type { Overlong, SegmentLayout } from '../pack/segment-layout.js';
import type { RecordExclusion } from '../filter/record-filter.js';
import { resident, SCAN_CHUNK, type ScanSteps } from '../splits/scan-reads.js';
import { finish } from '../util/steps.js';

/** A task is walked through its subset when at most 1/SPARSE of its records can be served: denser ones cost rejection at most SPARSE draws per served record on average. */
const SPARSE = 16;

/**
 * Whether a task has a train record a stream can serve under one seq_len, audio view and overlong
 * policy: one that fits (as is or truncated) and that no guard of the held-out set removes. Decided from the
 * index, by the very test a draw applies, scanning the task's records until one passes (usually
 * the first) and remembered per task. A draw loop then never needs a budget: a servable task's
 * permutation meets a servable record within two epochs, however few there are, and a task with
 * none is known before anything is drawn from it.
 *
 * For a task that rejects many draws in a row, `subset` scans all its records once and, if few
 * can be served, keeps which (see sparse-walk.ts), so a stream walks straight to them. Subsets are
 * shared by every stream of the same held-out set and fit and counted in `bytes`.
 */
export class Servability {
  private readonly layout: SegmentLayout;
  private readonly filter: RecordExclusion | undefined;
  private readonly seqLen: number;
  private readonly overlong: Overlong;
  private readonly known = new Map<number, boolean>();
  /** Per task scanned whole: its subset, or null when too many of its records can be served for one to help. */
  private readonly subsets = new Map<number, RecordSubset | null>();
  private held = 0;

  constructor(layout: SegmentLayout, filter: RecordExclusion | undefined, seqLen: number, overlong: Overlong) {
    this.layout = layout;
    this.filter = filter;
    this.seqLen = seqLen;
    this.overlong = overlong;
  }

  /** 0: servable; 1: removed by a guard or the stream's filter; 2: does not fit. */
  private kind(t: number, i: number): 0 | 1 | 2 {
    const loc = this.layout.table.locate(t, i);
    if (this.filter?.excluded(loc.shard, loc.row)) return 1;
    return this.layout.fit(loc, this.seqLen, this.overlong) !== undefined ? 0 : 2;
  }

  has(t: number): boolean {
    return this.known.get(t) ?? finish(this.hasSteps(t));
  }

  /** `has` as a sliced scan (util/steps.ts): a task with no servable record reads each of its records. */
  *hasSteps(t: number): ScanSteps<boolean> {
    const known = this.known.get(t);
    if (known !== undefined) return known;
    const n = this.layout.table.size(t);
    let ok = false;
    for (let i = 0; i < n && !ok; i++) {
      ok = (yield* resident(() => this.kind(t, i))) === 0;
      if (i % SCAN_CHUNK === SCAN_CHUNK - 1) yield;
    }
    this.known.set(t, ok);
    return ok;
  }

  /**
   * Task t's records split by whether they can be served, if at most 1/SPARSE of them can
   * (undefined otherwise). One scan of the task, at its first call.
   */
  subset(t: number): RecordSubset | undefined {
    let s = this.subsets.get(t);
    if (s === undefined) {
      s = this.scan(t);
      this.subsets.set(t, s);
      this.known.set(t, s === null || s.pass.length > 0);
      if (s) this.held += s.pass.byteLength + s.other.byteLength;
    }
    return s ?? undefined;
  }

  private scan(t: number): RecordSubset | null {
    const n = this.layout.table.size(t);
    const most = Math.floor(n / SPARSE);
    const lists: [number[], number[], number[]] = [[], [], []];
    for (let i = 0; i < n; i++) {
      const k = this.kind(t, i);
      lists[k].push(i);
      if (k === 0 && lists[0].length > most) return null;
    }
    const [pass, removed, long] = lists;
    const otherRemoved = removed.length <= long.length;
    return {
      size: n,
      pass: Int32Array.from(pass),
      other: Int32Array.from(otherRemoved ? removed : long),
      otherRemoved,
    };
  }

  /** Bytes held by the subsets kept so far. */
  get bytes(): number {
    return this.held + 64 * (this.known.size + this.subsets.size);
  }
}
