import type { CoreSettings } from '../stream/corpus-catalog.js';
import type { DataServiceCore } from '../stream/data-service-core.js';
import { startKey } from '../stream/stream-opener.js';
import type { RawOpen } from '../stream/stream-request.js';
import { spawnWorker } from '../util/spawn-worker.js';
import type { PlanTally } from './build-protocol.js';
import { BuildWorker } from './build-thread.js';
import { RemoteStream } from './remote-stream.js';
import type { ServedStream, ServedStreamOpener, StreamContext } from './served-stream.js';
import { ScanAborted } from '../util/steps.js';

export { BUILD_AHEAD } from './remote-stream.js';

/** The young generation of a build worker, in MB (see docs/performance.md, "serve --workers N"). */
export const BUILD_YOUNG_MB = 0;

/**
 * `serve --workers N`: N worker threads (build-worker.ts), each with the index open, build and
 * encode the batches of the streams assigned to them; this thread keeps the gRPC calls and
 * sends the bytes. A first message is checked here (decoded and resolved, not planned: a bad
 * request fails at once with its status, exactly as without workers) and its session is opened
 * on the worker only. A stream is assigned by its start state: the ranks of one job start from
 * the same state (startKey), so a stream whose state another open stream started from joins that
 * stream's worker, where they share each planned step (plan-cache.ts); any other stream goes to
 * the worker with the fewest.
 */
export class WorkerPool implements ServedStreamOpener {
  private nextStream = 0;
  /** Start state (digest of the start token) → its worker and how many open streams started there. */
  private readonly jobs = new Map<string, { worker: BuildWorker; streams: number }>();

  private constructor(
    private readonly core: DataServiceCore,
    private readonly workers: readonly BuildWorker[],
  ) {}

  /**
   * `youngMb`: each worker's young generation (V8 semi-spaces) at most, in MB; 0 keeps V8's
   * default. Building a batch allocates short-lived objects by the thousand, see BUILD_YOUNG_MB.
   */
  static async start(
    core: DataServiceCore,
    indexDir: string,
    settings: CoreSettings,
    n: number,
    youngMb = BUILD_YOUNG_MB,
  ): Promise<WorkerPool> {
    const resourceLimits = youngMb > 0 ? { maxYoungGenerationSizeMb: youngMb } : undefined;
    const workers = Array.from(
      { length: n },
      () =>
        new BuildWorker(
          spawnWorker(import.meta.url, 'build-worker', { workerData: { indexDir, settings }, resourceLimits }),
        ),
    );
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

  /** Sessions the workers opened (as of their last messages). */
  get opens(): number {
    return this.workers.reduce((n, w) => n + w.opens, 0);
  }

  /** Takes a worker for a stream starting from state `key`; the returned function gives it back. */
  private assign(key: string): { worker: BuildWorker; release: () => void } {
    let job = this.jobs.get(key);
    if (!job) {
      const worker = this.workers.reduce((best, w) => (w.load < best.load ? w : best));
      job = { worker, streams: 0 };
      this.jobs.set(key, job);
    }
    const j = job;
    j.streams++;
    j.worker.load++;
    let released = false;
    return {
      worker: j.worker,
      release: () => {
        if (released) return;
        released = true;
        j.worker.load--;
        if (--j.streams === 0) this.jobs.delete(key);
      },
    };
  }

  /** The index of the worker building `stream` (tests and benchmarks). */
  workerOf(stream: ServedStream): number {
    return stream instanceof RemoteStream ? this.workers.indexOf(stream.worker) : -1;
  }

  /**
   * What the pool holds (tests): of `stream`, its messages built ahead and not taken; of every
   * worker, the streams assigned to it and routed here, and those open on it as of its last message.
   */
  held(stream?: ServedStream): { ahead: number; workers: { load: number; routes: number; open: number }[] } {
    return {
      ahead: stream instanceof RemoteStream ? stream.ahead : 0,
      workers: this.workers.map((w) => ({ load: w.load, routes: w.routes.size, open: w.open })),
    };
  }

  async open(raw: RawOpen, ctx: StreamContext): Promise<ServedStream> {
    // Checked (and scanned, between event-loop turns) here, so a bad request is refused with the same error.
    const opening = await this.core.openingAsync(raw, { signal: ctx.signal, admit: ctx.admit });
    if (ctx.signal.aborted) throw new ScanAborted();
    const { worker, release } = this.assign(startKey(opening));
    const stream = new RemoteStream(
      worker,
      ++this.nextStream,
      opening.spec,
      opening.placement,
      ctx,
      release,
      (r) => this.core.lossReport(r, opening.heldout),
      (u) => this.core.update(u),
    );
    stream.start(raw);
    return stream;
  }

  close(): Promise<void> {
    return Promise.all(this.workers.map((w) => w.worker.terminate())).then(() => undefined);
  }
}
