import type { Worker } from 'node:worker_threads';
import { revive } from '../errors.js';
import type { Answer, BuildRequest, Built, PlanTally, WorkerMessage } from './build-protocol.js';

/** What the worker's messages about one stream go to (remote-stream.ts). */
export interface StreamRoute {
  receive(m: Built | Answer): void;
  /** The worker died. */
  fail(err: Error): void;
}

/** One worker thread and the streams it builds; routes its messages to them. */
export class BuildWorker {
  /** Open streams on this worker, by stream id. */
  readonly routes = new Map<number, StreamRoute>();
  private failed: Error | undefined;
  /** Streams assigned to this worker (worker-pool assignment). */
  load = 0;
  /** Streams open on the worker as of its last message. */
  open = 0;
  /** Sessions the worker opened, as of its last message. */
  opens = 0;
  /** The worker's plan cache as of its last message. */
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
    worker.on('message', (m: WorkerMessage) => {
      if ('ready' in m) return m.error ? refused?.(revive(m.error)) : opened?.();
      for (const one of m.messages) {
        if (one.state) {
          this.plans = one.state.plans;
          this.open = one.state.streams;
          this.opens = one.state.opens;
        }
        this.routes.get(one.stream)?.receive(one);
      }
    });
    // A worker that dies fails every stream it builds, with the reason.
    const die = (err: Error): void => {
      this.failed ??= err;
      refused?.(err);
      for (const r of this.routes.values()) r.fail(err);
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`build worker exited (code ${code})`)));
  }

  /** Posts a request; false (and nothing posted) once the worker is gone. */
  post(req: BuildRequest): Error | undefined {
    if (!this.failed) this.worker.postMessage(req);
    return this.failed;
  }
}
