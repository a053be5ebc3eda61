import type { Placement, StreamSpec } from './stream-spec.js';
import { MAX_PENDING_UPDATES } from './stream-spec.js';

/**
 * What one open stream's planning may hold at once, estimated from its spec before it plans
 * anything; the server charges it against `server.plan_budget_bytes`. Why an estimate and not a
 * measurement: the memory is taken while a step is planned, long after the stream was admitted,
 * and a refusal must come at open, when the client can still choose a smaller spec.
 *
 * Each term bounds what was measured on the sample corpus (docs/reliability.md): a global step
 * planned for every rank holds its segments, about 0.5 bytes per step token once planned and
 * twice that at the peak of planning (a server's RSS rose ~270 MB per stream planning steps of
 * 2^28 tokens), plus each row's own arrays; this rank's batch is built and encoded in columns
 * (about 12 bytes per batch token); the packing window holds its pending units (~370 bytes each
 * at a window of 65,536); and pending mixture updates ride in the stream's state.
 */
export const PLAN_BYTES = {
  /** Segments of one global step, per token of world_size × batch_size × seq_len. */
  perStepToken: 1,
  /** Arrays of one planned row (any packing; `none` and `padded` rows hold one segment). */
  perRow: 160,
  /** Columns and wire bytes of this rank's batch, per token of batch_size × seq_len. */
  perBatchToken: 12,
  /** One unit waiting in the packing window. */
  perWindowUnit: 512,
  /** One pending mixture update (its resolved mixture). */
  perUpdate: 4096,
  /** The session itself: sampler, walker cursors, the last token. */
  base: 256 << 10,
} as const;

/** Estimated bytes of planning memory of a stream with this spec and placement. */
export function planBytes(spec: StreamSpec, placement: Placement): number {
  const rows = placement.worldSize * spec.batchSize;
  const b = PLAN_BYTES;
  return Math.ceil(
    b.base +
      rows * spec.seqLen * b.perStepToken +
      rows * b.perRow +
      spec.batchSize * spec.seqLen * b.perBatchToken +
      spec.window * b.perWindowUnit +
      MAX_PENDING_UPDATES * b.perUpdate,
  );
}
