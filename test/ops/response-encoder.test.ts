import { describe, expect, inject, it } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { dataServiceDefinition, loadDefinition } from '../../src/server/proto.js';
import { encodeStreamResponse } from '../../src/server/response-encoder.js';
import type { WireBatch, WireEnd, WireExample, WireResponse, WireStats } from '../../src/stream/wire-types.js';
import { openCore } from '../helpers/core-streams.js';
import { rng } from '../helpers/seeded-rng.js';

/**
 * The hand-written StreamResponse encoder against the .proto: every message it writes decodes
 * (with proto-loader, as clients do) to exactly the object it was given, for random messages
 * over a grid of seeds and shapes, and for real batches of every packing mode.
 */
const method = dataServiceDefinition(loadDefinition()).StreamBatches as grpc.MethodDefinition<unknown, unknown>;
const decode = (buf: Buffer): unknown => method.responseDeserialize(buf);
const protobufjs = (r: WireResponse): Buffer => method.responseSerialize(r);

function randomResponse(seed: number, kind: 'any' | 'batch' | 'end' = 'any'): WireResponse {
  const r = rng(seed);
  const int = (max: number): number => Math.floor(r() * max);
  // Values across varint lengths and the encoder's 2^31 / 2^32 boundaries (it shifts below 2^32),
  // including uint64 beyond 32 bits (token counts of long runs).
  const big = (): number =>
    [0, 1, 127, 128, 16383, 16384, 2 ** 28 - 50, 2 ** 31 - 50, 2 ** 31, 2 ** 32 - 100, 2 ** 32 + 5, 2 ** 50 + 3][
      int(12)
    ]! + (r() < 0.5 ? 0 : int(100));
  const ints = (n: number, f = (): number => int(5000)): number[] => Array.from({ length: n }, f);
  const bytes = (n: number): Buffer => Buffer.from(ints(n, () => int(256)));
  const text = (): string => ['', 'a', 'ünï', '音频', 'x'.repeat(300)][int(5)]!;
  const stats = (): WireStats => ({
    taskExamples: ints(int(90), big),
    taskTextTokens: ints(int(90), big),
    taskAudioTokens: ints(int(90)),
    taskTarget: ints(int(90), () => r()),
    domainExamples: ints(3, big),
    domainTarget: [r(), 0, 1],
    paddingTokens: big(),
    dropped: int(3),
    truncated: int(3),
    taskDropped: ints(int(4)),
    taskTruncated: ints(int(4)),
    sinceUpdateStep: big(),
    taskExamplesSinceUpdate: ints(int(90), big),
    domainExamplesSinceUpdate: ints(int(4), big),
    windowStartStep: big(),
    taskExamplesWindow: ints(int(90)),
    domainExamplesWindow: ints(int(4)),
    taskEpochs: ints(int(90), () => int(3)),
    domainAudioSeconds: r() < 0.3 ? [] : [r() * 1e6, 0, 12.5],
  });
  const example = (): WireExample => ({
    uuid: text(),
    task: int(80),
    promptTokens: bytes(4 * int(50)),
    answerTokens: bytes(4 * int(20)),
    answerText: text(),
    answerAudioIds: Array.from({ length: int(3) }, text),
  });
  if (kind === 'end' || (kind === 'any' && r() < 0.2)) {
    const end: WireEnd = {
      taskExamples: ints(int(80)),
      totalTaskExamples: ints(int(80)),
      examples: big(),
      totalExamples: big(),
      resumeToken: bytes(int(3000)),
      reason: (['complete', 'max_batches', 'shutdown'] as const)[int(3)]!,
      taskDropped: ints(int(5)),
    };
    return { end };
  }
  const S = int(70);
  const batch: WireBatch = {
    step: big(),
    rank: int(8),
    worldSize: 1 + int(8),
    batchSize: int(9),
    seqLen: int(17000),
    padId: int(200000),
    tokens: bytes(4 * int(20000)),
    segRow: ints(S, () => int(8)),
    segOffset: ints(S),
    segLength: ints(S),
    segTask: ints(S, () => int(80)),
    segDomain: ints(S, () => int(3)),
    segTextTokens: ints(S),
    segAudioTokens: ints(S),
    segAudioFrames: ints(S),
    segTurns: ints(S, () => int(4)),
    uuids: Array.from({ length: int(80) }, text),
    turnTask: ints(int(80)),
    lossSpans: ints(2 * int(60)),
    resumeToken: bytes(int(4000)),
    stats: stats(),
    heldoutFingerprint: text(),
    examples: Array.from({ length: r() < 0.5 ? 0 : int(6) }, example),
    totalSteps: big(),
    taskDropped: r() < 0.5 ? [] : ints(int(80)),
    droppedFitSeqLen: int(20000),
  };
  return { batch };
}

describe('hand-written StreamResponse encoder', () => {
  it.each(Array.from({ length: 40 }, (_, i) => i))(
    'random message, seed %i: decodes to what protobufjs would have sent',
    (seed) => {
      const msg = randomResponse(seed);
      const ours = encodeStreamResponse(msg);
      expect(decode(ours)).toEqual(decode(protobufjs(msg)));
    },
  );

  it('real batches of every packing mode and split decode to themselves', async () => {
    const core = await openCore(inject('sampleIndex'));
    let compared = 0;
    for (const spec of [
      { split: 'train', packing: 'packed', batchSize: 4, seqLen: 2048 },
      { split: 'train', packing: 'multiturn', batchSize: 2, seqLen: 4096 },
      { split: 'train', packing: 'none', batchSize: 3, seqLen: 1024 },
      { split: 'test', packing: 'examples', batchSize: 5, seqLen: 4096 },
    ]) {
      const session = core.open({ spec });
      for (let i = 0; i < 6; i++) {
        const msg = session.next()!;
        const ours = encodeStreamResponse(msg);
        expect(decode(ours)).toEqual(decode(protobufjs(msg)));
        compared++;
      }
      const end = session.end('max_batches');
      expect(decode(encodeStreamResponse(end))).toEqual(decode(protobufjs(end)));
    }
    expect(compared).toBe(24);
  });

  it('writes a built batch around its tokens in place, once; a batch whose tokens are any other buffer is copied', async () => {
    const core = await openCore(inject('sampleIndex'));
    for (const packing of ['packed', 'none']) {
      const msg = core.open({ spec: { split: 'train', packing, batchSize: 4, seqLen: 2048 } }).next()!;
      if (!('batch' in msg)) throw new Error('expected a batch');
      const tokens = Buffer.from(msg.batch.tokens);
      const first = encodeStreamResponse(msg);
      expect(first.buffer).toBe(msg.batch.tokens.buffer);
      expect(Buffer.compare(msg.batch.tokens, tokens)).toBe(0);
      const want = Buffer.from(first);
      expect(decode(first)).toEqual(decode(protobufjs(msg)));
      // Again (or with a field changed): a new buffer; the first response, maybe in gRPC's hands, is untouched.
      const again = encodeStreamResponse(msg);
      const changed = encodeStreamResponse({ batch: { ...msg.batch, step: msg.batch.step + 1000 } });
      expect(again.buffer).not.toBe(first.buffer);
      expect(changed.buffer).not.toBe(first.buffer);
      expect(Buffer.compare(again, want)).toBe(0);
      expect(Buffer.compare(first, want)).toBe(0);
      expect(decode(changed)).toEqual(decode(protobufjs({ batch: { ...msg.batch, step: msg.batch.step + 1000 } })));
    }
    // Tokens in any other buffer, however much room is around them (a pooled one holds other
    // Buffers' bytes there), are never written around.
    const other = Buffer.alloc(1 << 16, 7);
    const msg = randomResponse(3, 'batch') as { batch: WireBatch };
    const out = encodeStreamResponse({ batch: { ...msg.batch, tokens: other.subarray(4096, 4096 + 64) } });
    expect(out.buffer).not.toBe(other.buffer);
    expect(other.every((b) => b === 7)).toBe(true);
  });

  it('refuses values an unsigned field cannot hold instead of writing garbage', () => {
    const { batch } = randomResponse(3, 'batch') as { batch: WireBatch };
    const { end } = randomResponse(4, 'end') as { end: WireEnd };
    expect(() => encodeStreamResponse({ batch: { ...batch, segRow: [1, -1] } })).toThrow(
      /cannot encode -1 as an unsigned varint/,
    );
    expect(() => encodeStreamResponse({ end: { ...end, examples: 0.5 } })).toThrow(
      /cannot encode 0.5 as an unsigned varint/,
    );
    expect(() => encodeStreamResponse({ end: { ...end, examples: 2 ** 53 } })).toThrow(/unsigned varint/);
  });
});
