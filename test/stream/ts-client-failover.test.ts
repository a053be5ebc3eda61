import { spawn, type ChildProcess } from 'node:child_process';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient, FlanStreamDataset, type DatasetOptions } from '../../clients/ts/flanstream-client.js';
import { FlanStreamError } from '../../clients/ts/errors.js';
import type { Batch } from '../../clients/ts/wire-types.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { batchesOf } from '../helpers/grpc-stream-calls.js';
import { childScript } from '../helpers/child-script.js';

const SERVER = childScript(new URL('../helpers/server-child.ts', import.meta.url));
const DEAD = '127.0.0.1:1';
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A flanstream server in a child process (so that it can be SIGKILLed). */
function spawnServer(index: string): Promise<{ child: ChildProcess; target: string }> {
  const child = spawn(process.execPath, [SERVER, index], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve({ child, target: `127.0.0.1:${m[1]}` });
    });
    child.on('exit', (code) => reject(new Error(`server child exited (${String(code)}): ${out}`)));
  });
}

/** Failover between replicas: every replica of one index resumes any token (docs/service.md). */
describe('TypeScript client failover', () => {
  const index = inject('sampleIndex');
  let backup: TestServer;
  let ref: string[];
  const opts: DatasetOptions = {
    split: 'train',
    batchSize: 4,
    seqLen: 4096,
    packing: 'packed',
    seed: 17,
    retry: { initialBackoffMs: 20, maxBackoffMs: 200 },
  };
  beforeAll(async () => {
    backup = await startTestServer(index);
    const c = new FlanStreamClient(backup.target);
    ref = (await batchesOf(c, { split: 'train', batchSize: 4, seqLen: 4096, packing: 'packed', seed: 17 }, 60)).map(
      (b) => hex(b.resumeToken),
    );
    c.close();
  });
  afterAll(async () => {
    await backup?.stop();
  });

  /** Iterates `ds` for `n` batches, calling `at[k]` right after the k-th batch. */
  async function run(ds: FlanStreamDataset, n: number, at: Record<number, () => unknown> = {}): Promise<Batch[]> {
    const out: Batch[] = [];
    for await (const b of ds) {
      out.push(b);
      at[out.length]?.();
      if (out.length === n) break;
    }
    return out;
  }

  it('a draining replica (StreamEnd "shutdown") hands over to the next target, exactly', async () => {
    const primary = await startTestServer(index);
    const ds = new FlanStreamDataset([primary.target, backup.target], { ...opts, prefetch: 2 });
    expect(ds.target).toBe(primary.target);
    let stopping: Promise<void> | undefined;
    // Batches already in flight from the primary are handed out first; 60 outlast them.
    const got = await run(ds, 60, { 5: () => (stopping = primary.stop()) });
    await stopping;
    expect(ds.target).toBe(backup.target);
    expect(got.map((b) => b.step)).toEqual([...Array(60).keys()]);
    expect(got.map((b) => hex(b.resumeToken))).toEqual(ref);
    ds.close();
  });

  it('a replica killed mid-stream (UNAVAILABLE) is replaced by the next target, exactly', async () => {
    const { child, target } = await spawnServer(index);
    try {
      const ds = new FlanStreamDataset([target, backup.target], { ...opts, prefetch: 4 });
      const got = await run(ds, 16, { 6: () => child.kill('SIGKILL') });
      expect(ds.target).toBe(backup.target);
      expect(got.map((b) => hex(b.resumeToken))).toEqual(ref.slice(0, 16));
      ds.close();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('an unreachable first target is skipped; rank r starts at target r mod n', async () => {
    const ds = new FlanStreamDataset([DEAD, backup.target], opts);
    expect((await run(ds, 5)).map((b) => hex(b.resumeToken))).toEqual(ref.slice(0, 5));
    expect(new FlanStreamDataset([DEAD, backup.target], { ...opts, rank: 1, worldSize: 2 }).target).toBe(backup.target);
    ds.close();
  });

  it('the default schedule reaches a server restarted on the same port about a second after it listens', async () => {
    const first = await startTestServer(index);
    const port = String(first.server.port);
    const ds = new FlanStreamDataset(first.target, { ...opts, retry: undefined, prefetch: 2 });
    const arrivals: [number, number][] = [];
    let listening = Infinity;
    let second: TestServer | undefined;
    try {
      for await (const b of ds) {
        arrivals.push([b.step, Date.now()]);
        if (arrivals.length === 3) {
          // Stopped (its streams end with StreamEnd "shutdown"); a 3 s outage, then a replacement on the same port.
          void first.stop();
          setTimeout(() => {
            void startTestServer(index, { 'server.port': port }).then((s) => {
              second = s;
              listening = Date.now();
            });
          }, 3000);
        }
        if (b.step >= 3 && arrivals.at(-1)![1] > listening) break;
        expect(arrivals.length).toBeLessThan(100);
      }
      expect(arrivals.map(([s]) => s)).toEqual([...arrivals.keys()]);
      const stall = arrivals.at(-1)![1] - listening;
      expect(stall, `first batch ${stall} ms after the replacement listened`).toBeLessThan(2000);
    } finally {
      ds.close();
      await second?.stop();
    }
  });

  it('gives up with UNAVAILABLE once every attempt failed', async () => {
    const ds = new FlanStreamDataset([DEAD, '127.0.0.1:2'], { ...opts, retry: { attempts: 3, initialBackoffMs: 5 } });
    const err = await run(ds, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlanStreamError);
    expect((err as FlanStreamError).code).toBe(Status.UNAVAILABLE);
    expect((err as FlanStreamError).details).toMatch(/gave up after 4 attempts/);
    ds.close();
  });

  it('sends the bearer token; without it the server answers UNAUTHENTICATED (not retried)', async () => {
    const secured = await startTestServer(index, { 'server.auth_tokens': 'open-sesame' });
    try {
      const anonymous = new FlanStreamDataset(secured.target, opts);
      const err = await run(anonymous, 1).catch((e: unknown) => e);
      expect((err as FlanStreamError).code).toBe(Status.UNAUTHENTICATED);
      anonymous.close();
      const [wrong, right] = ['wrong-token', 'open-sesame'].map(
        (token) => new FlanStreamClient(secured.target, { token }),
      );
      await expect(wrong!.corpusInfo()).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
      expect((await right!.corpusInfo()).tasks).toHaveLength(80);
      wrong!.close();
      right!.close();
      const ds = new FlanStreamDataset(secured.target, { ...opts, token: 'open-sesame' });
      expect((await run(ds, 3)).map((b) => hex(b.resumeToken))).toEqual(ref.slice(0, 3));
      ds.close();
    } finally {
      await secured.stop();
    }
  });
});
