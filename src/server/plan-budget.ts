import { ResourceExhaustedError } from '../errors.js';

/**
 * Planning memory of the open streams, for the whole server (`server.plan_budget_bytes`). Each
 * stream is charged its estimate (src/stream/plan-memory.ts) when it opens and gives it back
 * once, however its call ends. Why: max_streams alone let 16 streams at the largest step take
 * 2.6 GB; a stream the budget cannot hold is refused with RESOURCE_EXHAUSTED at open, naming the
 * budget and what it asked for, while the streams already open go on.
 */
export class PlanBudget {
  readonly maxBytes: number;
  private used = 0;
  private refused = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Bytes charged to open streams. */
  get bytes(): number {
    return this.used;
  }

  /** Streams refused because the budget could not hold them. */
  get refusals(): number {
    return this.refused;
  }

  /**
   * Charges `bytes` or throws RESOURCE_EXHAUSTED; the returned function gives them back (a second
   * call does nothing). A stream that asks for more than the whole budget is told so, to lower its spec.
   */
  charge(bytes: number): () => void {
    if (this.used + bytes > this.maxBytes) {
      this.refused++;
      const alone = bytes > this.maxBytes;
      throw new ResourceExhaustedError(
        `server.plan_budget_bytes (server-wide planning memory: this stream needs an estimated ${bytes} bytes, ` +
          (alone
            ? 'more than the whole budget; lower world_size x batch_size x seq_len or window)'
            : `open streams hold ${this.used}; retry once streams end, or lower world_size x batch_size x seq_len or window)`),
        this.used + bytes,
        this.maxBytes,
      );
    }
    this.used += bytes;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.used -= bytes;
    };
  }
}
