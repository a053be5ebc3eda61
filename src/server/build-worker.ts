/**
 * A build worker of `serve --workers N` (see worker-pool.ts): opens the index itself and builds
 * and encodes the batches of the streams assigned to them, so the batches of different streams are
 * built on different cores. Each stream is a StreamSession exactly as in a one-thread server, so
 * a stream's bytes, its tokens and its resume are the same whichever worker (or none) builds it.
 *
 * Batches are built ahead (build-protocol.ts): up to the stream's credit, without being asked,
 * so the worker builds while the server thread sends. What the worker built ahead is speculative
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

type Op = Extract<BuildRequest, { id: number }>;

/** One stream on this worker: its session, what it built ahead, and the requests waiting for the batch being built. */
class Feed {
  /** marks[0]: after the last message the server thread took; marks[k]: after the k-th built ahead. */
  readonly marks: SessionMark[];
  /** Bytes of each message built ahead (marks[1..]). */
  readonly sizes: number[] = [];
  readonly ops: Op[] = [];
  busy = false;
  closed = false;
  /** The last message is built (an end, or an error): nothing more to build. */
  over = false;

  constructor(
    readonly session: StreamSession,
    readonly ahead: { readonly messages: number; readonly bytes: number },
  ) {
    this.marks = [session.mark];
  }

  /** Room for one more message ahead: fewer than the credit, and within the byte budget (one always may be). */
  get room(): boolean {
    const n = this.sizes.length;
    if (n === 0) return true;
    return n < this.ahead.messages && this.sizes.reduce((a, b) => a + b, 0) < this.ahead.bytes;
  }

  /** The server thread took `n` more messages. */
  took(n: number): void {
    this.marks.splice(0, n);
    this.sizes.splice(0, n);
  }
}

function serve(core: DataServiceCore): void {
  const feeds = new Map<number, Feed>();
  const state = (s: StreamSession): StreamState => ({
    waiting: s.waiting,
    policy: s.spec.mixture.policy ? s.policyView() : undefined,
    plans: { counts: { ...core.catalog.plans.counts }, size: core.catalog.plans.size },
    streams: feeds.size,
  });

  /** Answers one request, at the batch the server thread took last (marks[0]). */
  function answer(stream: number, f: Feed, op: Op): Answer {
    const s = f.session;
    const { id } = op;
    switch (op.op) {
      case 'open':
        throw new Error('build worker: a stream opened twice');
      case 'end': {
        const { end } = s.end(op.reason) as { end: NonNullable<Answer['end']> };
        f.over = true;
        // The token of the last batch the server thread sent, not of one built ahead.
        return { stream, id, end: { ...end, resumeToken: f.marks[0]!.token } };
      }
      case 'report':
        s.addReport(core.lossReport(op.raw, s.heldout), f.marks[0]!.step);
        return { stream, id, state: state(s) };
      case 'update': {
        const u = core.update(op.raw);
        const rewound = f.marks.length > 1;
        if (rewound) {
          s.rewind(f.marks[0]!);
          f.marks.length = 1;
          f.sizes.length = 0;
          f.over = false;
        }
        try {
          s.addUpdate(u);
        } catch (err) {
          return { stream, id, error: carry(err), rewound };
        }
        return { stream, id, state: state(s), rewound };
      }
    }
  }

  /** Works through a stream's requests, then builds ahead while it has room; one run per stream at a time. */
  async function drive(stream: number, f: Feed): Promise<void> {
    if (f.busy) return;
    f.busy = true;
    const s = f.session;
    try {
      while (!f.closed) {
        const op = f.ops.shift();
        if (op) {
          let a: Answer;
          try {
            a = answer(stream, f, op);
          } catch (err) {
            a = { stream, id: op.id, error: carry(err) };
          }
          send(a);
          continue;
        }
        if (f.over || !f.room || s.waiting) return;
        let built: Built;
        const transfer: ArrayBuffer[] = [];
        try {
          const started = performance.now();
          const msg = await s.nextAsync(yieldTurn);
          if (f.closed) return;
          if (!msg) return; // over, or waiting for a report
          if ('end' in msg) {
            f.over = true;
            built = { stream, state: state(s), end: msg.end };
          } else {
            const summary = summarize(msg.batch);
            const bytes = movable(encodeStreamResponse(msg));
            // The bytes are moved; the summary (a few KB) is copied: a transfer costs more than that copy.
            transfer.push(bytes.buffer as ArrayBuffer);
            built = { stream, state: state(s), bytes, summary, seconds: (performance.now() - started) / 1000 };
          }
        } catch (err) {
          f.over = true;
          built = { stream, state: { ...state(s), waiting: false, policy: undefined }, error: carry(err) };
        }
        f.marks.push(s.mark);
        f.sizes.push(built.bytes?.byteLength ?? 0);
        send(built, transfer);
      }
    } finally {
      f.busy = false;
    }
  }

  port.on('message', (req: BuildRequest) => {
    const { stream } = req;
    if (req.op === 'open') {
      let a: Answer;
      try {
        const raw = req.raw.resume?.token
          ? { ...req.raw, resume: { ...req.raw.resume, token: Buffer.from(req.raw.resume.token) } }
          : req.raw;
        const f = new Feed(core.open(raw), { messages: req.credit, bytes: req.bytes });
        feeds.set(stream, f);
        a = { stream, id: req.id, state: state(f.session) };
      } catch (err) {
        a = { stream, id: req.id, error: carry(err) };
      }
      send(a);
      const f = feeds.get(stream);
      if (f) void drive(stream, f);
      return;
    }
    const f = feeds.get(stream);
    if (req.op === 'close') {
      if (f) f.closed = true;
      feeds.delete(stream);
      return;
    }
    if (!f) {
      if (req.op !== 'credit')
        send({ stream, id: req.id, error: carry(new Error(`build worker: no stream ${stream}`)) });
      return;
    }
    if (req.op === 'credit') f.took(req.n);
    else f.ops.push(req);
    void drive(stream, f);
  });
}

DataServiceCore.open(init.indexDir, init.settings).then(
  (core) => {
    port.postMessage({ ready: true } satisfies WorkerReady);
    serve(core);
  },
  (err: unknown) => port.postMessage({ ready: true, error: carry(err) } satisfies WorkerReady),
);
