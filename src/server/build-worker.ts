/**
 * A build worker of `serve --workers N` (see worker-pool.ts): opens the index itself and builds
 * and encodes the batches of the streams assigned to it, so the batches of different streams are
 * built on different cores. Each stream is a StreamSession exactly as in a one-thread server, so
 * a stream's bytes, its tokens and its resume are the same whichever worker (or none) builds it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { carry } from '../errors.js';
import { DataServiceCore } from '../stream/data-service-core.js';
import type { StreamSession } from '../stream/stream-session.js';
import type { BuildReply, BuildRequest, StreamState, WorkerInit, WorkerReady } from './build-protocol.js';
import { encodeStreamResponse } from './response-encoder.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));



/** A Buffer's bytes as a transferable ArrayBuffer of their own (a copy only for a pooled small buffer). */
function own(b: Buffer): ArrayBuffer {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length && b.buffer instanceof ArrayBuffer) return b.buffer;
  return Uint8Array.from(b).buffer;
}

async function serve(core: DataServiceCore): Promise<void> {
  const state = (s: StreamSession): StreamState => ({
    waiting: s.waiting,
    policy: s.spec.mixture.policy ? s.policyView() : undefined,
    plans: { counts: { ...core.plans.counts }, size: core.plans.size },
  });
  const sessions = new Map<number, StreamSession>();
  const session = (id: number): StreamSession => {
    const s = sessions.get(id);
    if (!s) throw new Error(`build worker: no stream ${id}`);
    return s;
  };
  async function handle(req: BuildRequest): Promise<[BuildReply, ArrayBuffer[]]> {
    const { id } = req;
    switch (req.op) {
      case 'open': {
        const raw = req.raw.resume?.token ? { ...req.raw, resume: { ...req.raw.resume, token: Buffer.from(req.raw.resume.token) } } : req.raw;
        const s = core.open(raw);
        sessions.set(req.stream, s);
        return [{ id, state: state(s) }, []];
      }
      case 'build': {
        const s = session(req.stream);
        const msg = await s.nextAsync(yieldTurn);
        if (!msg) return [{ id, state: state(s) }, []];
        if ('end' in msg) return [{ id, state: state(s), end: msg.end }, []];
        const bytes = own(encodeStreamResponse(msg));
        return [{ id, state: state(s), bytes: new Uint8Array(bytes), batch: { ...msg.batch, tokens: Buffer.alloc(0) } }, [bytes]];
      }
      case 'end': {
        const s = session(req.stream);
        return [{ id, state: state(s), end: (s.end(req.reason) as { end: BuildReply['end'] }).end }, []];
      }
      case 'report': {
        const s = session(req.stream);
        s.addReport(core.lossReport(req.raw, s.heldout));
        return [{ id, state: state(s) }, []];
      }
      case 'update': {
        const s = session(req.stream);
        s.addUpdate(core.update(req.raw));
        return [{ id, state: state(s) }, []];
      }
      case 'close':
        sessions.delete(req.stream);
        return [{ id }, []];
    }
  }
  port.on('message', (req: BuildRequest) => {
    handle(req).then(
      ([reply, transfer]) => port.postMessage(reply, transfer),
      (err: unknown) => port.postMessage({ id: req.id, error: carry(err) } satisfies BuildReply),
    );
  });
}

DataServiceCore.open(init.indexDir, init.settings).then(
  (core) => {
    port.postMessage({ ready: true } satisfies WorkerReady);
    return serve(core);
  },
  (err: unknown) => port.postMessage({ ready: true, error: carry(err) } satisfies WorkerReady),
);
