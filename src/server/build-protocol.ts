import type { LossReport } from '../mix/policy/policy-runner.js';
import type { CoreSettings } from '../stream/corpus-catalog.js';
import type { RawOpen } from '../stream/stream-request.js';
import type { MixtureUpdate } from '../stream/stream-spec.js';
import type { PolicyView } from '../stream/stream-plan.js';
import type { WireEnd } from '../stream/wire-types.js';
import type { CarriedError } from '../errors.js';
import type { BatchSummary } from './batch-summary.js';

/**
 * The messages between the server thread and its build workers (`serve --workers N`).
 *
 * Why not a request per batch: a worker that waits for "build the next one" idles while the
 * server thread sends. Instead a worker builds each stream's batches ahead, as far as it is
 * granted, and pushes them (`Built`); the server thread grants each next one while the stream's
 * build-ahead and the send budget have room (remote-stream.ts), and tells the worker which it
 * took (`credit`). Requests that change a stream (`report`, `update`, `end`) and `open` are
 * answered (`Answer`, same `id`) in the order they were asked, after the batch being built; they
 * apply at the batch the server thread last took, never at what the worker built ahead (an update
 * makes the worker rewind, see build-worker.ts). Reports and updates arrive checked: the server
 * thread parsed them, so a bad one fails the call there, as without workers.
 */
export interface WorkerInit {
  readonly indexDir: string;
  readonly settings: CoreSettings;
}

export type BuildRequest = { readonly stream: number } &
  /** `grants`: messages more the worker may build (each is granted once; building one uses it up). */
  (
    | { readonly op: 'open'; readonly id: number; readonly raw: RawOpen; readonly grants: number }
    /** The server thread took `took` more of the stream's built messages, and grants `grants` more. */
    | { readonly op: 'credit'; readonly took: number; readonly grants: number }
    | { readonly op: 'end'; readonly id: number; readonly reason: WireEnd['reason'] }
    | { readonly op: 'report'; readonly id: number; readonly report: LossReport }
    | { readonly op: 'update'; readonly id: number; readonly update: MixtureUpdate }
    | { readonly op: 'close' }
  );

/** The stream as of a message: what the server thread reads between messages. */
export interface StreamState {
  /** True while the worker cannot build on before a loss report (policy streams). */
  readonly waiting: boolean;
  /** Policy streams only (decoding it costs a token decode per batch). */
  readonly policy: PolicyView | undefined;
  /** The worker's plan cache (all its streams), for /metrics. */
  readonly plans: PlanTally;
  /** Streams open on the worker (tests: a closed stream is forgotten there). */
  readonly streams: number;
  /** Sessions the worker opened since start (/metrics). */
  readonly opens: number;
}

/** What /metrics shows of a plan cache (plan-cache.ts). */
export interface PlanTally {
  readonly counts: { readonly hits: number; readonly misses: number };
  readonly size: { readonly steps: number; readonly rows: number };
}

/** Worker → server thread, unasked: the stream's next message, built ahead. */
export interface Built {
  readonly stream: number;
  readonly state: StreamState;
  /** A batch: its wire bytes (transferred) and the columns /metrics reads (batch-summary.ts). */
  readonly bytes?: Uint8Array;
  readonly summary?: BatchSummary;
  /** Seconds the worker spent building and encoding it (flanstream_batch_build_seconds). */
  readonly seconds?: number;
  /** The stream's end (max_batches, complete): the last message built. */
  readonly end?: WireEnd;
  /** Building failed: the last message built (the server thread fails the call with it). */
  readonly error?: CarriedError;
}

/** Worker → server thread: the answer to a request with an `id`. */
export interface Answer {
  readonly stream: number;
  readonly id: number;
  readonly error?: CarriedError;
  readonly state?: StreamState;
  /** op 'end': the StreamEnd (its token is that of the last batch the server thread took). */
  readonly end?: WireEnd;
  /** op 'update': the batches built ahead were dropped (the server thread drops its copies). */
  readonly rewound?: boolean;
}

/**
 * Worker → server thread: what the worker built and answered since its last post, in order. Why
 * several per post: a post has a fixed cost on both threads (about as much as moving a batch's
 * bytes), so the worker posts once per event-loop turn, or every `OUTBOX_MESSAGES`.
 */
export interface Outbox {
  readonly messages: readonly (Built | Answer)[];
}

export const OUTBOX_MESSAGES = 4;

export type WorkerMessage = Outbox | WorkerReady;

/** Worker → server, once: the index is open (or why it is not). */
export interface WorkerReady {
  readonly ready: true;
  readonly error?: CarriedError;
}
