import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { decodeToken, encodeToken, type TokenPayload } from '../../src/stream/resume-token.js';
import { specHash, type StreamSpec } from '../../src/stream/stream-spec.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { activeStreams, batchesOf, collect } from '../helpers/grpc-stream-calls.js';

type Payload = TokenPayload<Record<string, unknown>>;

/**
 * Tokens are integrity-checked, not secret: anyone can re-encode a modified payload with a valid
 * checksum. Whatever such a token holds, the server answers with a status a client can act on
 * (INVALID_ARGUMENT or FAILED_PRECONDITION, never INTERNAL) and keeps serving.
 */
describe('forged resume tokens', () => {
  let ts: TestServer;
  let client: FlanStreamClient;
  let train: Payload;
  let evalP: Payload;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    client = new FlanStreamClient(ts.target);
    const fp = ts.server.core.catalog.reader.fingerprint;
    train = decodeToken(
      (await batchesOf(client, { split: 'train', batchSize: 2, seqLen: 2048, packing: 'packed' }, 2))[1]!.resumeToken,
      fp,
    ) as Payload;
    evalP = decodeToken(
      (await batchesOf(client, { split: 'test', batchSize: 2, seqLen: 2048, packing: 'none' }, 2))[1]!.resumeToken,
      fp,
    ) as Payload;
  });
  afterAll(async () => {
    client?.close();
    await ts?.stop();
  });

  /** Re-encodes `p` with `edit` applied (spec edits get a matching spec hash). */
  function forge(
    p: Payload,
    edit: (q: { spec: Record<string, unknown>; state: Record<string, unknown>; top: Record<string, unknown> }) => void,
  ): Uint8Array {
    const q = structuredClone(p) as unknown as Record<string, unknown>;
    edit({ spec: q.spec as Record<string, unknown>, state: q.state as Record<string, unknown>, top: q });
    if (q.spec && typeof q.spec === 'object') q.specHash = specHash(q.spec as unknown as StreamSpec);
    return encodeToken(q as unknown as TokenPayload);
  }

  type Edit = Parameters<typeof forge>[1];
  /** Payload edits; `tolerated` ones may also be served as a (forged but valid) stream. */
  const trainCases: [string, Edit, 'tolerated'?][] = [
    ['pool task out of range', ({ state }) => (state.pool = [1, 9999, 0])],
    ['pool record out of range', ({ state }) => (state.pool = [1, 0, 1e9])],
    ['pool truncated', ({ state }) => (state.pool = [3, 0])],
    ['walker cursor beyond the task', ({ state }) => ((state.walker as { cursors: number[] }).cursors[0] = 1e9)],
    ['walker cursors not numbers', ({ state }) => ((state.walker as { cursors: unknown[] }).cursors[0] = 'x')],
    ['sampler counts of the wrong length', ({ state }) => ((state.sampler as { counts: number[] }).counts = [1, 2])],
    ['stats missing', ({ state }) => delete state.stats],
    ['state not an object', ({ top }) => (top.state = 42)],
    ['pending update not an object', ({ state }) => (state.pending = [null])],
    [
      'current mixture with a bad weight',
      ({ state }) => (state.mixture = { weights: { speech: 'x' }, within: 'proportional', temperature: 1, cap: 0 }),
    ],
    ['current mixture missing', ({ state }) => (state.mixture = null)],
    ['spec missing its held-out set', ({ spec }) => delete spec.heldout],
    [
      'spec held-out selectors not a list',
      ({ spec }) =>
        (spec.heldout = { selectors: 'speech', unseenFlag: false, excludeSharedAudio: false, scope: 'all' }),
    ],
    ['spec with examples packing on train', ({ spec }) => (spec.packing = 'examples')],
    ['spec with batch_size 0', ({ spec }) => (spec.batchSize = 0)],
    ['spec with a huge window', ({ spec }) => (spec.window = 1e12)],
    ['spec turned into an evaluation split', ({ spec }) => (spec.split = 'test')],
    ['spec not an object', ({ top }) => (top.spec = 'train')],
    ['step negative', ({ top }) => (top.step = -1)],
    ['world size zero', ({ top }) => (top.worldSize = 0)],
    ['world size huge', ({ top }) => (top.worldSize = 1e12)],
    [
      'share baseline above the examples served',
      ({ state }) => ((state.shares as { atUpdate: number[] }).atUpdate[0] = 1e9),
    ],
    ['share window zero', ({ state }) => ((state.shares as { window: number }).window = 0)],
    [
      'share update step after the token step',
      ({ state }) => ((state.shares as { updateStep: number }).updateStep = 1e9),
    ],
    [
      'share baselines of the wrong length',
      ({ state }) => ((state.shares as { atBlockStart: number[] }).atBlockStart = [1]),
    ],
    // A token made before the share figures existed: they restart at its step.
    ['shares absent (an older token)', ({ state }) => delete state.shares, 'tolerated'],
  ];
  const evalCases: [string, Edit][] = [
    ['cursor beyond the items', ({ state }) => (state.cursor = 1e9)],
    ['cursor negative', ({ state }) => (state.cursor = -1)],
    ['cursor not a number', ({ state }) => (state.cursor = '3')],
    ['split turned into train', ({ spec }) => (spec.split = 'train')],
  ];

  const all = [
    ...trainCases.map(([n, e, t]) => [n, e, () => train, t] as const),
    ...evalCases.map(([n, e]) => [`evaluation: ${n}`, e, () => evalP, undefined] as const),
  ];
  for (const [name, edit, p, tolerated] of all) {
    it(`is ${tolerated ? 'refused or served, never INTERNAL' : 'refused with an actionable status'}: ${name}`, async () => {
      const r = await collect(client, [{ resume: { token: forge(p(), edit), maxBatches: 3 } }]);
      if (!tolerated)
        expect(r.error, `${r.batches.length} batches, end ${JSON.stringify(r.end?.reason)}`).toBeDefined();
      if (r.error)
        expect([Status[Status.INVALID_ARGUMENT], Status[Status.FAILED_PRECONDITION]], r.error.message).toContain(
          r.error.codeName,
        );
      else expect(r.batches).toHaveLength(3);
    });
  }

  it('refuses a pending update without a mixture', async () => {
    const r = await collect(client, [
      { resume: { token: forge(train, ({ state }) => (state.pending = [{ applyAtStep: 3 }])), maxBatches: 3 } },
    ]);
    expect(r.error?.codeName).toBe(Status[Status.INVALID_ARGUMENT]);
  });

  it('an unmodified re-encoding still resumes, and the server kept serving throughout', async () => {
    const r = await collect(client, [{ resume: { token: forge(train, () => undefined), maxBatches: 2 } }]);
    expect(r.error).toBeUndefined();
    expect(r.batches).toHaveLength(2);
    await expect.poll(() => activeStreams(ts), { timeout: 5000 }).toBe(0);
  });
});
