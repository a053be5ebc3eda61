import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { decodeToken } from '../../src/stream/resume-token.js';
import type { TrainState } from '../../src/stream/train-planner.js';
import { content, openCore, take, trainSpec, type Spec } from '../helpers/core-streams.js';

let core: DataServiceCore;
let replica: DataServiceCore;
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  // Another server over the same index: resuming must not depend on anything but the token.
  replica = await openCore(inject('sampleIndex'));
});

const pending = (token: Buffer): number =>
  (decodeToken(token, core.catalog.reader.fingerprint).state as TrainState).pool.length;

describe('exact resume in the middle of a packing window', () => {
  const cases: [string, Partial<Spec>][] = [
    ['packed, window 256', { window: 256 }],
    ['packed, window 16', { window: 16, seqLen: 2048 }],
    ['packed, window 1 (next fit)', { window: 1 }],
    ['packed, truncated units pending', { seqLen: 1024, overlong: 'truncate', window: 64 }],
    ['multiturn, window 256', { packing: 'multiturn' }],
    ['multiturn, max_turns 2', { packing: 'multiturn', maxTurns: 2, seqLen: 8192 }],
  ];

  it.each(cases)('%s: a token after step k continues byte-identically, on any replica', (_, over) => {
    const spec = trainSpec({ seed: 21, ...over });
    const full = take(core.open({ spec }), 24).batches;
    for (const k of [0, 1, 6, 13]) {
      expect(pending(full[k]!.resumeToken)).toBeGreaterThan(0);
      const server = k % 2 ? replica : core;
      const resumed = take(server.open({ resume: { token: full[k]!.resumeToken } }), 24 - k - 1).batches;
      resumed.forEach((b, j) => {
        const want = full[k + 1 + j]!;
        expect(content(b)).toBe(content(want));
        expect(b.stats).toEqual(want.stats);
        expect(b.resumeToken.equals(want.resumeToken)).toBe(true);
      });
    }
  });

  it('several ranks: a rank resumes its own part of the global stream', () => {
    const spec = { ...trainSpec({ seed: 8, batchSize: 3 }), worldSize: 3 };
    for (const rank of [0, 2]) {
      const full = take(core.open({ spec: { ...spec, rank } }), 10).batches;
      const resumed = take(core.open({ resume: { token: full[4]!.resumeToken, rank, worldSize: 3 } }), 5).batches;
      expect(resumed.map(content)).toEqual(full.slice(5).map(content));
    }
  });

  it('the same spec and seed give the same stream; another seed gives another', () => {
    const spec = trainSpec({ packing: 'multiturn', seed: 5 });
    const a = take(core.open({ spec }), 6).batches.map(content);
    expect(take(replica.open({ spec }), 6).batches.map(content)).toEqual(a);
    expect(take(core.open({ spec: { ...spec, seed: 6 } }), 6).batches.map(content)).not.toEqual(a);
  });
});
