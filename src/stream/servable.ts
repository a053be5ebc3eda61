import type { Overlong, SegmentLayout } from '../pack/segment-layout.js';
import type { Contamination } from '../splits/contamination.js';

/**
 * Whether a task has a train record a stream can serve under one seq_len and overlong policy:
 * one that fits (as is or truncated) and that no guard of the held-out set removes. Decided from the
 * index, by the very test a draw applies, scanning the task's records until one passes (usually
 * the first) and remembered per task. A draw loop then never needs a budget: a servable task's
 * permutation meets a servable record within two epochs, however few there are, and a task with
 * none is known before anything is drawn from it.
 */
export class Servability {
  private readonly layout: SegmentLayout;
  private readonly filter: Contamination | undefined;
  private readonly seqLen: number;
  private readonly overlong: Overlong;
  private readonly known = new Map<number, boolean>();

  constructor(layout: SegmentLayout, filter: Contamination | undefined, seqLen: number, overlong: Overlong) {
    this.layout = layout;
    this.filter = filter;
    this.seqLen = seqLen;
    this.overlong = overlong;
  }

  private fits(t: number, i: number): boolean {
    const loc = this.layout.table.locate(t, i);
    return !this.filter?.excluded(loc.shard, loc.row) && this.layout.fit(loc, this.seqLen, this.overlong) !== undefined;
  }

  has(t: number): boolean {
    let ok = this.known.get(t);
    if (ok === undefined) {
      const n = this.layout.table.size(t);
      ok = false;
      for (let i = 0; i < n && !ok; i++) ok = this.fits(t, i);
      this.known.set(t, ok);
    }
    return ok;
  }
}
