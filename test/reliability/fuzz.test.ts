import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { WireBatch, WireResponse } from '../../clients/ts/wire-types.js';
import { dataServiceDefinition, loadDefinition } from '../../src/server/proto.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { activeStreams, batchesOf } from '../helpers/grpc-stream-calls.js';
import { digests } from '../helpers/batch-digests.js';
import { rng } from '../helpers/seeded-rng.js';
import { forgedTokens } from './token-fuzz.js';

/**
 * Reliability (issue 8.3): a bad-request fuzzer against an in-process server. Random bytes,
 * mutated encodings of valid requests, wrong wire types, huge strings and maps, out-of-range
 * sizes, tampered and truncated resume tokens and thousands of mixture updates on one stream:
 * every call ends with a gRPC status that is neither INTERNAL nor UNKNOWN (an unhandled error),
 * the server stays up, a healthy stream running alongside equals a reference run, and the heap
 * does not grow beyond a bound.
 */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const METHOD = '/flanstream.v1.DataService/StreamBatches';
const svc = dataServiceDefinition(loadDefinition());
const encode = (m: object): Buffer => svc.StreamBatches!.requestSerialize(m);
const HEALTHY = { split: 'train' as const, batchSize: 2, seqLen: 2048, packing: 'packed' as const, seed: 99 };
const BASE = { split: 'train', batchSize: 2, seqLen: 512, packing: 'packed', seed: 1 };

/** Protobuf wire-format pieces, to build messages the generated encoder refuses to. */
const varint = (n: bigint | number): Buffer => {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
};
const field = (no: number, wt: number, payload: Buffer): Buffer =>
  Buffer.concat([varint((no << 3) | wt), wt === 2 ? varint(payload.length) : Buffer.alloc(0), payload]);

interface Outcome {
  code: number;
  details: string;
  batches: number;
}

async function waitGc(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage();
}

describe('bad requests fuzzer', () => {
  let ts: TestServer;
  let raw: grpc.Client;
  let client: FlanStreamClient;
  let token: Buffer;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), { 'server.max_updates_per_second': '1000000' });
    raw = new grpc.Client(ts.target, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
    client = new FlanStreamClient(ts.target);
    token = Buffer.from((await batchesOf(client, BASE, 3))[2]!.resumeToken);
  });
  afterAll(async () => {
    raw?.close();
    client?.close();
    await ts?.stop();
  });

  /**
   * One raw call: writes `msgs` (already encoded), half-closes unless `keepOpen`, reads until a
   * status; cancels after `maxBatches` batches or `ms` milliseconds (a valid unbounded stream).
   */
  function call(msgs: Buffer[], opts: { maxBatches?: number; ms?: number; keepOpen?: boolean } = {}): Promise<Outcome> {
    return new Promise((resolve) => {
      const c = raw.makeBidiStreamRequest(
        METHOD,
        (b: Buffer) => b,
        (b: Buffer) => b,
      );
      let batches = 0;
      let cancelled = false;
      const timer = setTimeout(() => {
        cancelled = true;
        c.cancel();
      }, opts.ms ?? 3000);
      c.on('data', () => {
        if (++batches >= (opts.maxBatches ?? 2) && !cancelled) {
          cancelled = true;
          c.cancel();
        }
      });
      c.on('error', () => undefined);
      c.on('status', (s: grpc.StatusObject) => {
        clearTimeout(timer);
        resolve({ code: cancelled && s.code === grpc.status.CANCELLED ? -1 : s.code, details: s.details, batches });
      });
      for (const m of msgs) c.write(m);
      if (!opts.keepOpen) c.end();
    });
  }

  it('every malformed call ends with a proper status; a healthy stream runs alongside unharmed; memory is bounded', async () => {
    const started = Date.now();
    // Any unhandled rejection in the (in-process) server fails the test: a request must never
    // break the server (a non-ASCII selector once did, through the status metadata).
    const unhandled: string[] = [];
    const saved = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    const onRejection = (e: unknown): void => {
      unhandled.push((e instanceof Error ? e.message : String(e)).slice(0, 300));
    };
    process.on('unhandledRejection', onRejection);
    try {
      // The healthy stream: read slowly (one batch per 20 ms) for the whole fuzzing run.
      const healthy: WireBatch[] = [];
      let healthyErr: unknown;
      const hcall = client.streamBatches();
      let paced = true;
      hcall.on('data', (r: WireResponse) => {
        if (!r.batch) return;
        healthy.push(r.batch);
        if (paced) {
          hcall.pause();
          setTimeout(() => hcall.resume(), 20);
        }
      });
      hcall.on('error', (e: unknown) => (healthyErr = e));
      hcall.write({ spec: HEALTHY });

      const rand = rng(8);
      const int = (n: number): number => Math.floor(rand() * n);
      const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
      const mutateBytes = (b: Buffer): Buffer => {
        const out = Buffer.from(b);
        switch (int(5)) {
          case 0:
            for (let k = 0; k <= int(4); k++) if (out.length) out[int(out.length)]! ^= 1 << int(8);
            return out;
          case 1:
            return out.subarray(0, int(out.length));
          case 2:
            return Buffer.concat([out, Buffer.from(Array.from({ length: 1 + int(40) }, () => int(256)))]);
          case 3: {
            const i = int(out.length + 1);
            return Buffer.concat([out.subarray(0, i), Buffer.from([int(256)]), out.subarray(i)]);
          }
          default:
            return Buffer.from(Array.from({ length: out.length }, () => int(256)));
        }
      };
      // 48 KiB: at 256 KiB and more the server hangs the call and its connection (see the known-bug test below).
      const big = 'x'.repeat(48 << 10);
      const manyWeights = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`speech/no such task ${i}`, 1]));
      const specs: object[] = [
        { ...BASE, batchSize: 0 },
        { ...BASE, batchSize: 4294967295 },
        { ...BASE, seqLen: 0 },
        { ...BASE, seqLen: 4294967295 },
        { ...BASE, batchSize: -1 },
        { ...BASE, seqLen: -5 },
        { ...BASE, rank: 7, worldSize: 3 },
        { ...BASE, worldSize: 4294967295 },
        { ...BASE, maxBatches: '18446744073709551615' },
        { ...BASE, seed: '18446744073709551615', maxBatches: 1 },
        { ...BASE, split: big },
        { ...BASE, packing: big },
        { ...BASE, split: '' },
        { ...BASE, packing: 'examples' },
        { ...BASE, split: 'TRAIN' },
        { ...BASE, mixture: { weights: manyWeights } },
        { ...BASE, mixture: { weights: { [big]: 1 } } },
        { ...BASE, mixture: { name: big } },
        { ...BASE, mixture: { weights: { speech: -1 } } },
        { ...BASE, mixture: { weights: { speech: Number.NaN } } },
        { ...BASE, mixture: { weights: { speech: Infinity } } },
        { ...BASE, mixture: { weights: { speech: 0, music: 0, audio: 0 } } },
        { ...BASE, mixture: { weights: { speech: 1, 'speech/Speech Recognition': 1 } } },
        { ...BASE, mixture: { weights: { speech: 1 }, within: 'temperature', temperature: 0 } },
        { ...BASE, mixture: { weights: { speech: 1 }, within: 'temperature', temperature: -1 } },
        { ...BASE, mixture: { weights: { speech: 1 }, within: big } },
        { ...BASE, mixture: { cap: '18446744073709551615' } },
        { ...BASE, heldout: { name: big } },
        { ...BASE, heldout: { selectors: Array.from({ length: 5000 }, (_, i) => `x${i}`), inline: true } },
        { ...BASE, heldout: { selectors: ['../../etc/passwd'], inline: true } },
        { ...BASE, heldout: { scope: 'nope' } },
        { ...BASE, window: 4294967295 },
        { ...BASE, overlong: 'explode' },
        { ...BASE, maxTurns: 4294967295 },
        { ...BASE, packing: 'multiturn', maxTurns: 100000 },
        { split: 'test', batchSize: 3, seqLen: 64, packing: 'examples', maxBatches: 1 },
        { split: 'heldout', batchSize: 1, seqLen: 16, packing: 'packed', maxBatches: 1, heldout: { name: big } },
      ];
      const tokenVariants = (): Buffer[] => [
        token.subarray(0, int(token.length)),
        mutateBytes(token),
        Buffer.concat([token, token]),
        Buffer.alloc(0),
        Buffer.alloc(1 << 20, 0xab),
      ];
      /** One fuzz case: a list of encoded messages. */
      const fuzzCase = (i: number): Buffer[] => {
        switch (i % 10) {
          case 0:
            return [Buffer.from(Array.from({ length: int(300) }, () => int(256)))];
          case 1:
            return [mutateBytes(encode({ spec: pick(specs) }))];
          case 2:
            return [encode({ spec: pick(specs) })];
          case 3:
            return [
              encode({
                resume: {
                  token: pick(tokenVariants()),
                  rank: pick([0, 1, 5, 4294967295]),
                  worldSize: pick([0, 1, 2, 4294967295]),
                  maxBatches: 1,
                },
              }),
            ];
          case 4: // wrong wire types for the oneof and scalar fields
            return [
              pick([
                field(1, 0, varint(12345)),
                field(2, 5, Buffer.alloc(4, 1)),
                field(1, 2, field(2, 2, Buffer.from('abc'))),
                field(1, 2, Buffer.concat([field(1, 0, varint(7)), field(3, 1, Buffer.alloc(8, 0xff))])),
                field(2, 2, field(1, 0, varint(1))),
                field(3, 2, field(2, 2, Buffer.from('zzz'))),
                field(1, 2, field(5, 2, field(2, 0, varint(1)))),
                field(4, 2, Buffer.from([0xff, 0xff, 0xff])),
                field(15, 2, Buffer.alloc(1000)),
                Buffer.concat([varint((1 << 3) | 2), varint(0xffffffff)]),
              ]),
            ];
          case 5: // a valid start then garbage or a second spec
            return [
              encode({ spec: { ...BASE, maxBatches: 3 } }),
              pick([
                Buffer.from([0xff, 0x01]),
                encode({ spec: BASE }),
                encode({ resume: { token } }),
                mutateBytes(encode({ mixtureUpdate: { weights: { speech: 1 }, applyAtStep: 5 } })),
              ]),
            ];
          case 6: // update messages first, or updates with bad weights
            return [
              pick([
                encode({ mixtureUpdate: { weights: { speech: 1 }, applyAtStep: 1 } }),
                encode({ spec: { ...BASE, maxBatches: 2 }, updates: [{ weights: { nope: 1 }, applyAtStep: 0 }] }),
                encode({
                  spec: { ...BASE, maxBatches: 2 },
                  updates: Array.from({ length: 5000 }, (_, k) => ({ weights: { speech: 1 + k }, applyAtStep: k })),
                }),
              ]),
            ];
          case 7:
            return [encode({ resume: { token: mutateBytes(token), maxBatches: 2 } })];
          case 8:
            return [Buffer.alloc(0)];
          default:
            return [
              mutateBytes(encode({ spec: { ...pick(specs), maxBatches: 2 } })),
              ...(rand() < 0.3 ? [Buffer.from(Array.from({ length: int(64) }, () => int(256)))] : []),
            ];
        }
      };

      const codes = new Map<string, number>();
      const bad: string[] = [];
      let calls = 0;
      const runBatch = async (from: number, to: number): Promise<void> => {
        const CONC = Number(process.env.FUZZ_CONC ?? 12);
        for (let i = from; i < to; i += CONC) {
          const t0 = Date.now();
          const cases = Array.from({ length: Math.min(CONC, to - i) }, (_, k) => fuzzCase(i + k));
          const outs = await Promise.all(cases.map((m) => call(m)));
          if (process.env.FUZZ_DEBUG)
            outs.forEach(
              (o, k) =>
                o.code === -1 &&
                o.batches === 0 &&
                console.log(
                  `hang case ${i + k}: ${cases[k]!.map((b) => `${b.length}:${b.subarray(0, 80).toString('hex')}`).join(' ')}`,
                ),
            );
          if (process.env.FUZZ_DEBUG && Date.now() - t0 > 1000)
            console.log(
              `slow round ${i}: ${Date.now() - t0} ms ${outs.map((o) => `${o.code}/${o.batches}:${o.details.slice(0, 60)}`).join(' | ')}`,
            );
          outs.forEach((o, k) => {
            calls++;
            const name = o.code === -1 ? 'cancelled-by-fuzzer' : (grpc.status[o.code] ?? String(o.code));
            codes.set(name, (codes.get(name) ?? 0) + 1);
            // Undecodable requests are the client's error (INVALID_ARGUMENT); INTERNAL means a server bug.
            if (o.code === grpc.status.INTERNAL || o.code === grpc.status.UNKNOWN)
              bad.push(`case ${i + k}: ${name}: ${o.details}`);
          });
        }
      };
      await runBatch(0, 200); // warm-up, then the memory baseline
      const before = await waitGc();
      await runBatch(200, Number(process.env.FUZZ_N ?? 1800));

      // Thousands of mixture updates on one stream, each its own message, sent as batches arrive
      // (one per batch, applying 56 steps after the batch just received — beyond what the server has
      // already built ahead — so 56, fewer than the server's limit of 64, are pending at a time).
      const updCall = raw.makeBidiStreamRequest(
        METHOD,
        (b: Buffer) => b,
        (b: Buffer) => b,
      );
      const UPDATES = 2000;
      const UPD_BATCHES = 2100;
      let updBatches = 0;
      let sent = 0;
      const updStatus = new Promise<grpc.StatusObject>((resolve) => updCall.on('status', resolve));
      updCall.on('data', () => {
        const s = updBatches++;
        for (let j = 0; j < 1 && sent < UPDATES; j++, sent++) {
          const w = { speech: 1 + (sent % 7), music: 1 + (sent % 3), audio: 1 };
          updCall.write(encode({ mixtureUpdate: { weights: w, applyAtStep: s + 56 } }));
        }
        if (sent === UPDATES) {
          sent++;
          updCall.end();
        }
      });
      updCall.on('error', () => undefined);
      updCall.write(encode({ spec: { ...HEALTHY, maxBatches: UPD_BATCHES } }));
      const upd = await updStatus;
      codes.set(`updates:${grpc.status[upd.code]}`, 1);
      if (upd.code === grpc.status.INTERNAL || upd.code === grpc.status.UNKNOWN)
        bad.push(`update stream: ${upd.details}`);
      // At the default limit (200 updates/s) a flood is refused with RESOURCE_EXHAUSTED, not a crash.

      await runBatch(1800, 2000);
      const after = await waitGc();

      // The healthy stream: still running, batches equal to a reference run.
      expect(healthyErr).toBeUndefined();
      const n = healthy.length;
      paced = false;
      hcall.cancel();
      const ref = await batchesOf(client, HEALTHY, n);
      expect(digests(healthy.slice(0, n))).toEqual(digests(ref));
      // Everything closed: no stream left open on the server.
      // (Calls hit by the known Metadata bug never end on the server: they stay counted.)
      let active = -1;
      for (let t = 0; t < 50 && active !== 0; t++) {
        active = await activeStreams(ts);
        if (active !== 0) await new Promise((r) => setTimeout(r, 200));
      }
      expect(active).toBe(0);

      const mb = (x: number): string => `${(x / 2 ** 20).toFixed(1)} MB`;
      console.log(
        `fuzz: ${calls} calls + 1 stream of ${UPDATES} updates (${updBatches} batches, ${grpc.status[upd.code]}: ${upd.details}) in ${((Date.now() - started) / 1000).toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries(codes))}; healthy stream ${n} batches equal to reference; heap ${mb(before.heapUsed)} → ${mb(after.heapUsed)}, rss ${mb(before.rss)} → ${mb(after.rss)}`,
      );
      expect(bad).toEqual([]);
      expect(upd.code).toBe(grpc.status.OK);
      expect(updBatches).toBe(UPD_BATCHES + 1); // the batches and the final StreamEnd
      expect(sent).toBe(UPDATES + 1);
      expect(n).toBeGreaterThan(50);
      expect(after.heapUsed - before.heapUsed).toBeLessThan(64 * 2 ** 20);
      expect(after.rss - before.rss).toBeLessThan(256 * 2 ** 20);
      expect(unhandled).toEqual([]);
    } finally {
      process.removeListener('unhandledRejection', onRejection);
      for (const l of saved) process.on('unhandledRejection', l);
    }
  }, 150_000);

  // The INVALID_ARGUMENT details once echoed the whole value into the grpc-message trailer, which
  // left the call without a status and hung the connection.
  /**
   * Issue 12.15: structured fuzzing of resume tokens. Fields of a real token (cursors, epochs,
   * pool entries, stats vectors, pending updates, spec fields, step, world size) set to boundary
   * values and re-encoded with a valid checksum: each call is answered within BOUND_MS (a forged
   * walker cursor once looped the server forever), never with INTERNAL; a healthy stream running
   * alongside stays byte-identical to its reference and the heap stays bounded.
   */
  it('forged tokens with boundary values are each answered promptly, never INTERNAL; a healthy stream is unharmed', async () => {
    const BOUND_MS = 10_000;
    const COUNT = Number(process.env.FUZZ_TOKENS ?? 300);
    const healthy: WireBatch[] = [];
    const hcall = client.streamBatches();
    hcall.on('data', (r: WireResponse) => {
      if (!r.batch) return;
      healthy.push(r.batch);
      hcall.pause();
      setTimeout(() => hcall.resume(), 20);
    });
    hcall.on('error', () => undefined);
    hcall.write({ spec: HEALTHY });
    const before = await waitGc();
    const cases = forgedTokens(token, COUNT, 12);
    const unanswered: string[] = [];
    const bad: string[] = [];
    const codes = new Map<string, number>();
    for (let i = 0; i < cases.length; i += 10) {
      const group = cases.slice(i, i + 10);
      const outs = await Promise.all(
        group.map((c) =>
          call([encode({ resume: { token: c.token, maxBatches: 1 } })], { maxBatches: 10, ms: BOUND_MS }),
        ),
      );
      outs.forEach((o, k) => {
        const name = o.code === -1 ? 'cancelled' : (grpc.status[o.code] ?? String(o.code));
        codes.set(name, (codes.get(name) ?? 0) + 1);
        if (o.code === -1 && o.batches === 0) unanswered.push(group[k]!.name);
        if (o.code === grpc.status.INTERNAL || o.code === grpc.status.UNKNOWN)
          bad.push(`${group[k]!.name}: ${o.details}`);
      });
    }
    const after = await waitGc();
    const n = healthy.length;
    hcall.cancel();
    const ref = await batchesOf(client, HEALTHY, n);
    console.log(
      `token fuzz: ${cases.length} forged tokens, statuses ${JSON.stringify(Object.fromEntries(codes))}; healthy stream ${n} batches; heap ${(before.heapUsed / 2 ** 20).toFixed(1)} -> ${(after.heapUsed / 2 ** 20).toFixed(1)} MB`,
    );
    expect(unanswered).toEqual([]);
    expect(bad).toEqual([]);
    expect(n).toBeGreaterThan(10);
    expect(digests(healthy.slice(0, n))).toEqual(digests(ref));
    expect(after.heapUsed - before.heapUsed).toBeLessThan(64 * 2 ** 20);
  }, 300_000);

  it('a 1 MiB string field is refused promptly and the connection stays usable', async () => {
    const huge = encode({ spec: { ...BASE, split: 'x'.repeat(1 << 20) } });
    const first = await call([huge], { ms: 10_000 });
    const next = await call([Buffer.alloc(0)], { ms: 10_000 });
    expect([grpc.status[first.code] ?? 'timeout', grpc.status[next.code] ?? 'timeout']).toEqual([
      'INVALID_ARGUMENT',
      'INVALID_ARGUMENT',
    ]);
  }, 30_000);
});
