import { Worker } from 'node:worker_threads';

/**
 * An HTTP proxy in front of a real S3 server (s3rver) that can slow or fail GETs: every GET waits
 * `delayMs` before it is forwarded (a distant store), and a GET of a key ending in `failing` is
 * answered 503 SlowDown (a store that keeps failing: retries cannot fix it). Everything else is
 * forwarded as is, so signatures still check. It runs on a thread of its own: a reader in this
 * thread that waits synchronously for a page (Atomics.wait) must not stop the proxy too.
 */
const PROXY = `
const { createServer, request } = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const counts = new Int32Array(workerData.counts);
const target = new URL(workerData.upstream);
let delayMs = 0;
let failing = '';
parentPort.on('message', (m) => { delayMs = m.delayMs; failing = m.failing; parentPort.postMessage('set'); });
const server = createServer((req, res) => {
  const forward = () => {
    if (req.method === 'GET') {
      Atomics.store(counts, 3, Math.max(Atomics.load(counts, 3), Atomics.add(counts, 2, 1) + 1));
      res.on('close', () => Atomics.sub(counts, 2, 1));
    }
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode || 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  };
  if (req.method !== 'GET') return forward();
  Atomics.add(counts, 0, 1);
  const path = decodeURIComponent((req.url || '').split('?')[0] || '');
  if (failing !== '' && path.endsWith(failing)) {
    Atomics.add(counts, 1, 1);
    req.resume();
    res.writeHead(503, { 'content-type': 'application/xml' });
    res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected failure</Message></Error>');
    return;
  }
  if (delayMs > 0) setTimeout(forward, delayMs); else forward();
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
`;

export class S3Proxy {
  port = 0;
  private worker: Worker | undefined;
  /** gets, refused, in flight, most in flight at once. */
  private readonly counts = new Int32Array(new SharedArrayBuffer(16));

  constructor(private readonly upstream: string) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** GETs seen, GETs refused, and the most GETs forwarded and unanswered at once. */
  get gets(): number {
    return Atomics.load(this.counts, 0);
  }
  get refused(): number {
    return Atomics.load(this.counts, 1);
  }
  get maxInFlight(): number {
    return Atomics.load(this.counts, 3);
  }

  resetCounts(): void {
    for (let k = 0; k < 4; k++) if (k !== 2) Atomics.store(this.counts, k, 0);
  }

  /**
   * From now on every GET waits `delayMs` before it is forwarded, and GETs of keys ending in
   * `failing` are refused ('' = none). Resolves once the proxy applies it.
   */
  async set(faults: { readonly delayMs?: number; readonly failing?: string }): Promise<void> {
    const w = this.worker;
    if (!w) throw new Error('proxy not started');
    const applied = new Promise((ok) => w.once('message', ok));
    w.postMessage({ delayMs: faults.delayMs ?? 0, failing: faults.failing ?? '' });
    await applied;
  }

  async start(): Promise<this> {
    const worker = new Worker(PROXY, {
      eval: true,
      workerData: { upstream: this.upstream, counts: this.counts.buffer },
    });
    this.worker = worker;
    this.port = await new Promise<number>((ok, fail) => {
      worker.once('message', ok);
      worker.once('error', fail);
    });
    worker.unref();
    return this;
  }

  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
