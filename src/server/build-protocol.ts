import type { RawLossReport } from '../stream/loss-report.js';
import type { CoreSettings } from '../stream/corpus-catalog.js';
import type { RawOpen, RawUpdate } from '../stream/stream-request.js';
import type { PolicyView } from '../stream/stream-session.js';
import type { WireBatch, WireEnd } from '../stream/wire-types.js';
import type { CarriedError } from '../errors.js';

/**
 * The messages between the server thread and its build workers (`serve --workers N`). Every
 * request names the stream it is about; a worker answers each one, in order, with the same `id`.
 */
export interface WorkerInit {
  readonly indexDir: string;
  readonly settings: CoreSettings;
}

export type BuildRequest = { readonly id: number; readonly stream: number } & (
  | { readonly op: 'open'; readonly raw: RawOpen }
  | { readonly op: 'build' }
  | { readonly op: 'end'; readonly reason: WireEnd['reason'] }
  | { readonly op: 'report'; readonly raw: RawLossReport }
  | { readonly op: 'update'; readonly raw: RawUpdate }
  | { readonly op: 'close' }
);

/** The stream as of an answer: what the server thread reads between answers. */
export interface StreamState {
  readonly waiting: boolean;
  /** Policy streams only (decoding it costs a token decode per batch). */
  readonly policy: PolicyView | undefined;
  /** The worker's plan cache (all its streams), for /metrics. */
  readonly plans: PlanTally;
}

/** What /metrics shows of a plan cache (plan-cache.ts). */
export interface PlanTally {
  readonly counts: { readonly hits: number; readonly misses: number };
  readonly size: { readonly steps: number; readonly rows: number };
}

export interface BuildReply {
  readonly id: number;
  readonly error?: CarriedError;
  readonly state?: StreamState;
  /** op 'build': the batch's wire bytes and its columns (tokens left out: they are in `bytes`). */
  readonly bytes?: Uint8Array;
  readonly batch?: WireBatch;
  /** op 'build' at the stream's end, and op 'end'. */
  readonly end?: WireEnd;
}

/** Worker → server, once: the index is open (or why it is not). */
export interface WorkerReady {
  readonly ready: true;
  readonly error?: CarriedError;
}
