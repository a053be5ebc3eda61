import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamDataset } from '../../clients/ts/flanstream-client.js';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { Batch, WireResponse } from '../../clients/ts/wire-types.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { activeStreams } from '../helpers/grpc-stream-calls.js';
import { childScript } from '../helpers/child-script.js';

const CHILD = childScript(new URL('../helpers/stream-child.ts', import.meta.url));

/** Starts the child trainer; resolves once its output contains `until`. */
function startChild(target: string, pauseAfter: number, until: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CHILD, target, String(pauseAfter)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (until.test(out)) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`child exited (${String(code)}) before ${String(until)}: ${out}`)));
  });
}

const killed = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

/** A client that dies or cancels mid-stream takes nothing else down. */
describe('clients killed mid-stream', () => {
  let ts: TestServer;
  let ds: FlanStreamDataset;
  let other: AsyncIterator<Batch>;
  let lastStep = -1;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    // The concurrent stream that must keep being served throughout.
    ds = new FlanStreamDataset(ts.target, { split: 'train', batchSize: 4, seqLen: 2048, seed: 3, prefetch: 2 });
    other = ds[Symbol.asyncIterator]();
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    ds?.close();
    await ts?.stop();
  });

  /** The concurrent stream delivers `n` more consecutive batches. */
  async function otherKeepsGoing(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const r = await other.next();
      expect(r.done).toBeFalsy();
      expect((r.value as Batch).step).toBe(++lastStep);
    }
  }

  it('a trainer process SIGKILLed while the server waits on its full transport', async () => {
    await otherKeepsGoing(2);
    const child = await startChild(ts.target, 2, /paused/);
    children.push(child);
    await expect.poll(() => activeStreams(ts), { timeout: 10_000 }).toBe(2);
    await otherKeepsGoing(3);
    await killed(child);
    await expect.poll(() => activeStreams(ts), { timeout: 10_000 }).toBe(1);
    await otherKeepsGoing(10);
  });

  it('a trainer process SIGKILLed while reading as fast as it can', async () => {
    const child = await startChild(ts.target, 0, /batch 5\n/);
    children.push(child);
    await killed(child);
    await otherKeepsGoing(5);
    await expect.poll(() => activeStreams(ts), { timeout: 10_000 }).toBe(1);
    await otherKeepsGoing(5);
  });

  it('cancelled calls (reading, never reading, or before any batch) are cleaned up', async () => {
    const client = new FlanStreamClient(ts.target);
    const spec = { spec: { split: 'train', batchSize: 8, seqLen: 8192, packing: 'packed' } } as const;
    // Reading: cancel after two batches.
    const reading = client.streamBatches();
    await new Promise<void>((resolve) => {
      let n = 0;
      reading.on('data', (r: WireResponse) => r.batch && ++n === 2 && resolve());
      reading.on('error', () => undefined);
      reading.write(spec);
    });
    // Never reading: the server fills the transport and waits for it to drain.
    const stalled = client.streamBatches();
    stalled.on('error', () => undefined);
    stalled.pause();
    stalled.write(spec);
    // No first message at all.
    const idle = client.streamBatches();
    idle.on('error', () => undefined);
    await expect.poll(() => activeStreams(ts), { timeout: 10_000 }).toBe(4);
    for (const call of [reading, stalled, idle]) call.cancel();
    await expect.poll(() => activeStreams(ts), { timeout: 10_000 }).toBe(1);
    await otherKeepsGoing(5);
    client.close();
  });

  it('a dataset loop left early (break) closes its stream', async () => {
    const d = new FlanStreamDataset(ts.target, { split: 'train', batchSize: 2, seqLen: 2048 });
    let n = 0;
    for await (const b of d) {
      expect(b.step).toBe(n);
      if (++n === 3) break;
    }
    await expect.poll(() => activeStreams(ts), { timeout: 10_000 }).toBe(1);
    // The next loop continues after the last batch handed out.
    for await (const b of d) {
      expect(b.step).toBe(3);
      break;
    }
    d.close();
    await otherKeepsGoing(2);
  });
});
