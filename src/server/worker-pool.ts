import type { Worker } from 'node:worker_threads';
import type { CoreSettings } from '../stream/corpus-catalog.js';
import type { DataServiceCore } from '../stream/data-service-core.js';
import type { RawOpen, RawUpdate } from '../stream/stream-request.js';
import type { RawLossReport } from '../stream/loss-report.js';
import type { PolicyView } from '../stream/stream-session.js';
import type { Placement, StreamSpec } from '../stream/stream-spec.js';
import type { WireEnd } from '../stream/wire-types.js';
import { revive } from '../errors.js';
import { checksum } from '../util/hash.js';
import { spawnWorker } from '../util/spawn-worker.js';
import type { BuildReply, BuildRequest, PlanTally, StreamState, WorkerReady } from './build-protocol.js';
import type { Built, ServedStream, ServedStreamOpener } from './served-stream.js';

type Request = BuildRequest extends infer R ? (R extends BuildRequest ? Omit<R, 'id'> : never) : never;

/** One worker thread and the answers it owes. */
class BuildWorker {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (r: BuildReply) => void; reject: (e: Error) => void }>();
  private failed: Error | undefined;
  /** Streams open on this worker. */
  streams = 0;
  /** The worker's plan cache as of its last answer. */
  plans: PlanTally = { counts: { hits: 0, misses: 0 }, size: { steps: 0, rows: 0 } };

  /** Resolves once the worker has opened the index; rejects with why it could not. */
  readonly ready: Promise<void>;

  constructor(readonly worker: Worker) {
    let opened: (() => void) | undefined;
    let refused: ((e: Error) => void) | undefined;
    this.ready = new Promise((resolve, reject) => {
      opened = resolve;
      refused = reject;
    });
    worker.on('message', (r: BuildReply | WorkerReady) => {
      if ('ready' in r) return r.error ? refused?.(revive(r.error)) : opened?.();
      if (r.state) this.plans = r.state.plans;
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      if (r.error) w.reject(revive(r.error));
      else w.resolve(r);
    });
    // A worker that dies fails every stream it builds, with the reason.
    const die = (err: Error): void => {
      this.failed = err;
      refused?.(err);
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`build worker exited (code ${code})`)));
  }

  call(req: Request): Promise<BuildReply> {
    if (this.failed) return Promise.reject(this.failed);
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id });
    });
  }
}

/**
 * `serve --workers N`: N worker threads (build-worker.ts), each with the index open, build and
 * encode the batches of the streams assigned to them; this thread keeps the gRPC calls and
 * sends the bytes. A stream is validated here first (opened on this thread's core, so a bad
 * request fails at once with its status, exactly as without workers) and assigned by its start
 * state: the ranks of one job start from the same state (the resume token of their first step),
 * so a stream whose state another open stream started from joins that stream's worker, where they
 * share each planned step (plan-cache.ts); any other stream goes to the worker with the fewest.
 */
export class WorkerPool implements ServedStreamOpener {
  private nextStream = 0;
  /** Start state (digest of the start token) → its worker and how many open streams started there. */
  private readonly jobs = new Map<string, { worker: BuildWorker; streams: number }>();

  private constructor(
    private readonly core: DataServiceCore,
    private readonly workers: readonly BuildWorker[],
  ) {}

  static async start(core: DataServiceCore, indexDir: string, settings: CoreSettings, n: number): Promise<WorkerPool> {
    const workers = Array.from({ length: n }, () => new BuildWorker(spawnWorker(import.meta.url, 'build-worker', { workerData: { indexDir, settings } })));
    try {
      await Promise.all(workers.map((w) => w.ready));
    } catch (err) {
      await Promise.all(workers.map((w) => w.worker.terminate()));
      throw err;
    }
    return new WorkerPool(core, workers);
  }

  get threads(): number {
    return this.workers.length;
  }

  private sum(f: (t: PlanTally) => number): number {
    return this.workers.reduce((n, w) => n + f(w.plans), 0);
  }

  /** The workers' plan caches summed, read by /metrics like a plan cache (each worker's streams share steps among themselves). */
  get counts(): PlanTally['counts'] {
    return { hits: this.sum((t) => t.counts.hits), misses: this.sum((t) => t.counts.misses) };
  }

  get size(): PlanTally['size'] {
    return { steps: this.sum((t) => t.size.steps), rows: this.sum((t) => t.size.rows) };
  }

  /** Takes a worker for a stream starting from `token`; the returned function gives it back. */
  private assign(token: Buffer): { worker: BuildWorker; release: () => void } {
    const key = checksum(token);
    let job = this.jobs.get(key);
    if (!job) {
      const worker = this.workers.reduce((best, w) => (w.streams < best.streams ? w : best));
      job = { worker, streams: 0 };
      this.jobs.set(key, job);
    }
    const j = job;
    j.streams++;
    j.worker.streams++;
    let released = false;
    return {
      worker: j.worker,
      release: () => {
        if (released) return;
        released = true;
        j.worker.streams--;
        if (--j.streams === 0) this.jobs.delete(key);
      },
    };
  }

  /** The index of the worker building `stream` (tests and benchmarks). */
  workerOf(stream: ServedStream): number {
    return stream instanceof RemoteStream ? this.workers.indexOf(stream.worker) : -1;
  }

  open(raw: RawOpen): ServedStream {
    const local = this.core.open(raw);
    const { worker, release } = this.assign(local.resumeToken);
    const stream = ++this.nextStream;
    const opened = worker.call({ op: 'open', stream, raw });
    const state = { waiting: local.waiting, policy: local.spec.mixture.policy ? local.policyView() : undefined, plans: worker.plans };
    return new RemoteStream(worker, stream, local.spec, local.placement, state, opened, release, (r) => this.core.lossReport(r, local.heldout), (u) => this.core.update(u));
  }

  close(): Promise<void> {
    return Promise.all(this.workers.map((w) => w.worker.terminate())).then(() => undefined);
  }
}

/** A stream built on a worker; the getters show it as of the worker's last answer. */
class RemoteStream implements ServedStream {
  private closed = false;

  constructor(
    readonly worker: BuildWorker,
    private readonly stream: number,
    readonly spec: StreamSpec,
    readonly placement: Placement,
    private state: StreamState,
    private readonly opened: Promise<BuildReply>,
    /** Gives the worker slot back (worker-pool assignment). */
    private readonly release: () => void,
    /** Reports and updates are checked here first, so a bad one fails like without workers. */
    private readonly checkReport: (raw: RawLossReport) => unknown,
    private readonly checkUpdate: (raw: RawUpdate) => unknown,
  ) {
    // An open that fails on the worker (the same code passed here) surfaces at the first build.
    opened.catch(() => undefined);
  }

  get waiting(): boolean {
    return this.state.waiting;
  }

  private async call(req: Request): Promise<BuildReply> {
    await this.opened;
    const r = await this.worker.call(req);
    if (r.state) this.state = r.state;
    return r;
  }

  async build(): Promise<Built> {
    const r = await this.call({ op: 'build', stream: this.stream });
    if (r.end) return { end: r.end };
    if (!r.bytes || !r.batch) return undefined;
    return { batch: r.batch, bytes: Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength) };
  }

  async end(reason: WireEnd['reason']): Promise<{ end: WireEnd }> {
    const r = await this.call({ op: 'end', stream: this.stream, reason });
    return { end: r.end! };
  }

  async addReport(raw: RawLossReport): Promise<void> {
    this.checkReport(raw);
    await this.call({ op: 'report', stream: this.stream, raw });
  }

  async addUpdate(raw: RawUpdate): Promise<void> {
    this.checkUpdate(raw);
    await this.call({ op: 'update', stream: this.stream, raw });
  }

  policyView(): PolicyView | undefined {
    return this.state.policy;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
    this.worker.call({ op: 'close', stream: this.stream }).catch(() => undefined);
  }
}
