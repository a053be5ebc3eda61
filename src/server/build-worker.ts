/**
 * A build worker of `serve --workers N` (see worker-pool.ts): opens the index itself and builds
 * and encodes the batches of the streams assigned to them, so the batches of different streams are
 * built on different cores. Each stream is a StreamSession exactly as in a one-thread server,
 * opened here only (the server thread checked its first message), so a stream's bytes, its tokens
 * and its resume are the same whichever worker (or none) builds it.
 *
 * Batches are built ahead (build-protocol.ts): as far as the server thread granted, without being
 * asked, so the worker builds while the server thread sends. What the worker built ahead is speculative
 * only towards mixture updates: an update applies after the batch the server thread last took,
 * so the worker rewinds the stream to that batch (StreamSession.rewind) and builds again. Loss
 * reports never change a step built ahead (a policy step waits for the report it consumes), so
 * they are only checked against the step the server thread took last.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { carry } from '../errors.js';
import { DataServiceCore } from '../stream/data-service-core.js';
import type { SessionMark, StreamSession } from '../stream/stream-session.js';
import {
  OUTBOX_MESSAGES,
  type Answer,
  type BuildRequest,
  type Built,
  type Outbox,
  type StreamState,
  type WorkerInit,
  type WorkerReady,
} from './build-protocol.js';
import { summarize } from './batch-summary.js';
import { movable } from './movable.js';
import { encodeStreamResponse } from './response-encoder.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What this worker built and answered, posted together (build-protocol.ts, Outbox). */
const outbox: (Built | Answer)[] = [];
const moved: ArrayBuffer[] = [];
let flushing = false;

function flush(): void {
  flushing = false;
  if (outbox.length === 0) return;
  port.postMessage({ messages: outbox.splice(0) } satisfies Outbox, moved.splice(0));
}

/** Queues a message for the server thread: posted at the end of this turn, or at once when OUTBOX_MESSAGES are waiting. */
function send(m: Built | Answer, transfer: ArrayBuffer[] = []): void {
  outbox.push(m);
  moved.push(...transfer);
  if (outbox.length >= OUTBOX_MESSAGES) flush();
  else if (!flushing) {
    flushing = true;
    setImmediate(flush);
  }
}

type Op = Extract<BuildRequest, { id: number; op: 'end' | 'report' | 'update' }>;

/**
 * idle: may build its next message once granted one (and not waiting for a report); building: a
 * message is being built, requests wait for it in order; over: its last message is built (an end
 * or an error), only requests are answered until an update rewinds it; closed: the server thread
 * forgot it (terminal).
 */
type FeedState = 'idle' | 'building' | 'over' | 'closed';

/** One stream on this worker: its session, what it built ahead, and the requests waiting for the batch being built. */
class Feed {
  state: FeedState = 'idle';
  /** marks[0]: after the last message the server thread took; marks[k]: after the k-th built ahead. */
  readonly marks: SessionMark[];
  readonly ops: Op[] = [];

  constructor(
    readonly session: StreamSession,
    /** Messages the server thread granted and this stream has not built yet (remote-stream.ts decides how many). */
    public grants: number,
  ) {
    this.marks = [session.mark];
  }

  get gone(): boolean {
    return this.state === 'closed';
  }

  /** The server thread took `n` more messages. */
  took(n: number): void {
    this.marks.splice(0, n);
  }
}

function serve(core: DataServiceCore): void {
  const feeds = new Map<number, Feed>();
  const state = (s: StreamSession): StreamState => ({
    waiting: s.waiting,
    policy: s.spec.mixture.policy ? s.policyView() : undefined,
    plans: { counts: { ...core.catalog.plans.counts }, size: core.catalog.plans.size },
    streams: feeds.size,
    opens: core.opens,
  });

  /** Answers one request, at the batch the server thread took last (marks[0]). */
  function answer(stream: number, f: Feed, op: Op): Answer {
    const s = f.session;
    const { id } = op;
    switch (op.op) {
      case 'end': {
        const { end } = s.end(op.reason) as { end: NonNullable<Answer['end']> };
        f.state = 'over';
        // The token of the last batch the server thread sent, not of one built ahead.
        return { stream, id, end: { ...end, resumeToken: f.marks[0]!.token } };
      }
      case 'report':
        s.addReport(op.report, f.marks[0]!.step);
        return { stream, id, state: state(s) };
      case 'update': {
        const rewound = f.marks.length > 1;
        if (rewound) {
          s.rewind(f.marks[0]!);
          f.marks.length = 1;
          f.state = 'idle';
        }
        try {
          s.addUpdate(op.update);
        } catch (err) {
          return { stream, id, error: carry(err), rewound };
        }
        return { stream, id, state: state(s), rewound };
      }
    }
  }

  /** Builds the stream's next message, granted (the server thread charges it to the stream's send budget as it arrives). */
  async function buildOne(stream: number, f: Feed): Promise<void> {
    const s = f.session;
    f.state = 'building';
    f.grants--;
    let built: Built;
    const transfer: ArrayBuffer[] = [];
    try {
      const started = performance.now();
      const msg = await s.nextAsync(yieldTurn);
      if (f.gone) return;
      if (!msg) {
        // Waiting for a report after all: the grant waits with it.
        f.grants++;
        f.state = 'idle';
        return;
      }
      if ('end' in msg) {
        f.state = 'over';
        built = { stream, state: state(s), end: msg.end };
      } else {
        f.state = 'idle';
        const summary = summarize(msg.batch);
        const bytes = movable(encodeStreamResponse(msg));
        // The bytes are moved; the summary (a few KB) is copied: a transfer costs more than that copy.
        transfer.push(bytes.buffer as ArrayBuffer);
        built = { stream, state: state(s), bytes, summary, seconds: (performance.now() - started) / 1000 };
      }
    } catch (err) {
      if (f.gone) return;
      f.state = 'over';
      built = { stream, state: { ...state(s), waiting: false, policy: undefined }, error: carry(err) };
    }
    f.marks.push(s.mark);
    send(built, transfer);
  }

  /** Works through a stream's requests, then builds what it was granted; one run per stream at a time. */
  async function drive(stream: number, f: Feed): Promise<void> {
    if (f.state === 'building' || f.state === 'closed') return;
    for (;;) {
      for (let op = f.ops.shift(); op; op = f.ops.shift()) {
        let a: Answer;
        try {
          a = answer(stream, f, op);
        } catch (err) {
          a = { stream, id: op.id, error: carry(err) };
        }
        send(a);
      }
      if (f.state !== 'idle' || f.grants === 0 || f.session.waiting) return;
      await buildOne(stream, f);
      if (f.gone) return;
    }
  }

  /**
   * Streams whose open is still scanning (between this thread's event-loop turns, so the other
   * streams it builds go on), with the requests that came for them meanwhile, taken in order once
   * it opened; a close among them stops the scan.
   */
  const opening = new Map<number, { queued: BuildRequest[]; stop: AbortController }>();

  function open(req: Extract<BuildRequest, { op: 'open' }>): void {
    const { stream } = req;
    const stop = new AbortController();
    opening.set(stream, { queued: [], stop });
    const opened = Promise.resolve()
      .then(() => {
        const raw = req.raw.resume?.token
          ? { ...req.raw, resume: { ...req.raw.resume, token: Buffer.from(req.raw.resume.token) } }
          : req.raw;
        return core.openAsync(raw, { signal: stop.signal });
      })
      .then(
        (session): Answer => {
          const f = new Feed(session, req.grants);
          feeds.set(stream, f);
          return { stream, id: req.id, state: state(f.session) };
        },
        (err: unknown): Answer => ({ stream, id: req.id, error: carry(err) }),
      );
    void opened.then((a) => {
      const queued = opening.get(stream)?.queued ?? [];
      opening.delete(stream);
      send(a);
      for (const q of queued) handle(q);
      const f = feeds.get(stream);
      if (f) void drive(stream, f);
    });
  }

  function handle(req: BuildRequest): void {
    const { stream } = req;
    const pending = opening.get(stream);
    if (pending && req.op !== 'open') {
      pending.queued.push(req);
      if (req.op === 'close') pending.stop.abort();
      return;
    }
    if (req.op === 'open') return open(req);
    const f = feeds.get(stream);
    if (req.op === 'close') {
      if (f) f.state = 'closed';
      f?.session.close();
      feeds.delete(stream);
      return;
    }
    if (!f) {
      if (req.op !== 'credit')
        send({ stream, id: req.id, error: carry(new Error(`build worker: no stream ${stream}`)) });
      return;
    }
    if (req.op === 'credit') {
      f.took(req.took);
      f.grants += req.grants;
    } else f.ops.push(req);
    void drive(stream, f);
  }

  port.on('message', handle);
}

DataServiceCore.open(init.indexDir, init.settings).then(
  (core) => {
    port.postMessage({ ready: true } satisfies WorkerReady);
    serve(core);
  },
  (err: unknown) => port.postMessage({ ready: true, error: carry(err) } satisfies WorkerReady),
);
