import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { CLI, ensureDist, ROOT } from './helpers/dist.js';
import { collect, dataClient, digest, sleep, type Collected } from './helpers/grpc.js';

interface Case {
  readonly spec: Record<string, unknown>;
  readonly updates?: object[];
  readonly rank?: number;
}

/** Three different streams: packed, multiturn with a mixture update pending, and rank 1 of 2. */
const CASES: Case[] = [
  { spec: { split: 'train', batchSize: 4, seqLen: 2048, packing: 'packed', seed: 31 } },
  {
    spec: { split: 'train', batchSize: 2, seqLen: 4096, packing: 'multiturn', seed: 32 },
    updates: [{ weights: { speech: 1, music: 3, audio: 1 }, applyAtStep: 40 }],
  },
  { spec: { split: 'train', batchSize: 3, seqLen: 2048, packing: 'none', seed: 33, rank: 1, worldSize: 2 }, rank: 1 },
];
const MORE = 12;

/**
 * SIGTERM on `flanstream serve` (a real child process): every open stream gets its in-flight
 * batch and then StreamEnd{reason: "shutdown"} with the token of the last batch sent; the
 * process exits 0; another server resumes each token exactly where the stream stopped.
 */
describe('graceful shutdown (SIGTERM)', () => {
  let proc: ChildProcess;
  let target: string;
  let stderr = '';
  let exited: Promise<number | null>;
  let second: TestServer;

  beforeAll(async () => {
    await ensureDist();
    proc = spawn(
      process.execPath,
      [CLI, 'serve', '--index', inject('sampleIndex'), '--port', '0', '--http-port', '0'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } },
    );
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    const lines = createInterface({ input: proc.stdout! });
    const listening = await new Promise<{ port: number }>((resolve, reject) => {
      lines.on('line', (l) => {
        const ev = JSON.parse(l) as { event?: string; port: number };
        if (ev.event === 'listening') resolve(ev);
      });
      proc.on('exit', (code) => reject(new Error(`serve exited with ${String(code)} before listening:\n${stderr}`)));
    });
    target = `127.0.0.1:${listening.port}`;
    second = await startTestServer(inject('sampleIndex'));
  }, 300_000);
  afterAll(async () => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    await second?.stop();
  });

  it('ends every stream with its token, exits 0, and the tokens resume exactly on another server', async () => {
    const c = dataClient(target);
    const counts = CASES.map(() => 0);
    const streams = CASES.map((k, i) =>
      collect(
        c,
        { spec: k.spec, updates: k.updates ?? [] },
        {
          // A reader that keeps up but does not race: the streams are mid-flight at SIGTERM.
          onBatch: (_b, n) => {
            counts[i] = n;
            return sleep(2);
          },
        },
      ),
    );
    while (counts.some((n) => n < 5)) await sleep(10);
    proc.kill('SIGTERM');
    const got: Collected[] = await Promise.all(streams);
    c.close();
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/SIGTERM: draining streams/);

    const resumer = dataClient(second.target);
    try {
      for (const [i, k] of CASES.entries()) {
        const r = got[i]!;
        expect(r.error, `stream ${i}`).toBeUndefined();
        expect(r.end?.reason, `stream ${i}`).toBe('shutdown');
        expect(r.batches.length).toBeGreaterThanOrEqual(5);
        // The token handed back is that of the last batch the client received.
        expect(Buffer.from(r.end!.resumeToken)).toEqual(Buffer.from(r.batches.at(-1)!.resumeToken));
        const resumed = await collect(resumer, {
          resume: { token: r.end!.resumeToken, rank: k.rank ?? 0, maxBatches: MORE },
        });
        expect(resumed.error).toBeUndefined();
        expect(resumed.batches).toHaveLength(MORE);
        const whole = await collect(resumer, {
          spec: { ...k.spec, maxBatches: r.batches.length + MORE },
          updates: k.updates ?? [],
        });
        expect(whole.error).toBeUndefined();
        // Interrupted + resumed = uninterrupted, byte for byte (tokens, columns, stats, resume tokens).
        expect(
          [...r.batches, ...resumed.batches].map(digest),
          `stream ${i} cut after ${r.batches.length} batches`,
        ).toEqual(whole.batches.map(digest));
        expect(resumed.batches[0]!.step).toBe(r.batches.at(-1)!.step + 1);
      }
    } finally {
      resumer.close();
    }
  });
});
