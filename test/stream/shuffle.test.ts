import { beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanError } from '../../src/errors.js';
import { encodeToken, decodeToken, type TokenPayload } from '../../src/stream/resume-token.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { specHash, type StreamSpec } from '../../src/stream/stream-spec.js';
import type { RawOpen } from '../../src/stream/stream-request.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { rowsOf } from '../helpers/batch-digests.js';
import { content, openCore, servedPerTask, take, trainSpec, type Spec } from '../helpers/core-streams.js';
import { expectedTargets, worstDeviation } from '../helpers/expected-mixture.js';
import { IndexFacts } from '../helpers/index-facts.js';
import { rng } from '../helpers/seeded-rng.js';

/**
 * `shuffle: "blocks"` (src/mix/block-order.ts) against the stream guarantees: every record once
 * per task epoch with a new order each epoch, locality (a window of draws from `shuffle_window`
 * runs of consecutive records), exact and elastic resume, tokens refused under other shuffle
 * settings, the mixture held, and evaluation streams refusing a shuffle.
 */
let core: DataServiceCore;
/** A server whose default order is global (stream.shuffle: global). */
let globalCore: DataServiceCore;
let facts: IndexFacts;
beforeAll(async () => {
  core = await openCore(inject('sampleIndex'));
  globalCore = await openCore(inject('sampleIndex'), { 'stream.shuffle': 'global' });
  facts = new IndexFacts(core.catalog.reader);
});

/** The largest train task of the sample corpus (609 records in blocks of about 24). */
const BIG = 'speech/Spoken Language Understanding/Speech-to-text Translation';
const blocks = (window: number, over: Partial<Spec> = {}): Spec =>
  trainSpec({ shuffle: 'blocks', shuffleWindow: window, ...over });

function failure(raw: RawOpen, on = core): FlanError {
  try {
    on.open(raw);
  } catch (err) {
    if (err instanceof FlanError) return err;
    throw err;
  }
  throw new Error('the stream opened');
}

/** The fewest runs of `block` consecutive positions, cut at any offset (cyclically, mod n), that cover `xs`. */
function runsCovering(xs: readonly number[], block: number, n: number): number {
  let best = Infinity;
  for (let rot = 0; rot < n; rot++)
    best = Math.min(best, new Set(xs.map((x) => Math.floor(((((x - rot) % n) + n) % n) / block))).size);
  return best;
}

describe('shuffle "blocks": per-task epochs and locality', () => {
  /** Positions (in the task's train list) of the records a one-task stream serves, in order. */
  function served(spec: Spec, batches: number): { order: number[]; n: number; block: number } {
    const t = core.catalog.reader.tasks.find((x) => x.path === BIG)!;
    const list = facts.splitList(t.id);
    const pos = new Map(list.map((u, i) => [u, i]));
    const { batches: bs } = take(
      core.open({
        spec: {
          ...spec,
          packing: 'none',
          batchSize: 64,
          seqLen: 8192,
          overlong: 'truncate',
          mixture: { weights: { [BIG]: 1 } },
        },
      }),
      batches,
    );
    const order = bs.flatMap((b) => b.uuids).map((u) => pos.get(u)!);
    const mean = (t.textTokens + t.audioTokens) / (t.counts[0] + t.counts[1] + t.counts[2]);
    return { order, n: list.length, block: Math.floor(16_384 / mean) };
  }

  it('serves every record once per epoch, in a new order each epoch, a window of draws from `shuffle_window` runs of consecutive records', () => {
    const W = 2;
    const { order, n, block } = served(blocks(W), 30);
    expect(block).toBeGreaterThan(8);
    const epochs = [0, 1, 2].map((e) => order.slice(e * n, (e + 1) * n));
    for (const e of epochs) expect(new Set(e).size).toBe(n);
    expect(new Set(epochs.map((e) => e.join(','))).size).toBe(3);
    // Each group of W × block draws comes from W blocks (the epoch's last group may be short).
    for (const e of epochs) {
      for (let g = 0; (g + 1) * W * block <= n; g++)
        expect(runsCovering(e.slice(g * W * block, (g + 1) * W * block), block, n), `group ${g}`).toBeLessThanOrEqual(
          W,
        );
    }
    // The global order of the same stream scatters the same number of draws over most of the task.
    const global = served(trainSpec({ shuffle: 'global' }), 2).order;
    expect(runsCovering(global.slice(0, W * block), block, n)).toBeGreaterThan(4 * W);
  });

  it('a larger window opens more blocks at once', () => {
    const { order, n, block } = served(blocks(8), 10);
    const first = order.slice(0, 8 * block);
    expect(runsCovering(first, block, n)).toBeLessThanOrEqual(8);
    expect(runsCovering(first, block, n)).toBeGreaterThan(2);
  });
});

describe('shuffle "blocks": resume', () => {
  it('resumes exactly at random points (tokens carry the order: the walker cursors and the spec)', () => {
    const spec = blocks(3, { batchSize: 4, seqLen: 2048, seed: 5 });
    const { batches: all } = take(core.open({ spec: { ...spec, maxBatches: 40 } }), 40);
    const want = all.map(content);
    const draw = rng(7);
    for (let k = 0; k < 8; k++) {
      const p = Math.floor(draw() * (all.length - 1));
      const { batches: rest } = take(core.open({ resume: { token: all[p]!.resumeToken, maxBatches: 40 - p - 1 } }), 40);
      expect([...want.slice(0, p + 1), ...rest.map(content)], `after batch ${p}`).toEqual(want);
    }
  });

  it('a token saved at W=3 resumes at W′ ∈ {1, 2, 4} at the same global position (elastic)', () => {
    const B = 2;
    const spec = blocks(2, { batchSize: B, seqLen: 2048, packing: 'packed', seed: 3 });
    const ref = take(core.open({ spec }), 36).batches.flatMap(rowsOf);
    const token = take(core.open({ spec: { ...spec, rank: 0, worldSize: 3 } }), 3).batches[2]!.resumeToken;
    const at = 3 * 3 * B;
    for (const W2 of [1, 2, 4]) {
      const rows: string[][] = Array.from({ length: W2 }, (_, r) =>
        take(core.open({ resume: { token, rank: r, worldSize: W2 } }), 3).batches.flatMap(rowsOf),
      );
      for (let i = 0; i < 3; i++) {
        const step = rows.flatMap((rs) => rs.slice(i * B, (i + 1) * B));
        expect(step, `W'=${W2} step ${i}`).toEqual(ref.slice(at + i * W2 * B, at + (i + 1) * W2 * B));
      }
    }
  });

  const tokenOf = (spec: Spec): Uint8Array => take(core.open({ spec }), 2).batches[1]!.resumeToken;

  it('a token is refused (FAILED_PRECONDITION) when the request asks for another shuffle or window', () => {
    const token = tokenOf(blocks(4));
    const global = tokenOf(trainSpec({ shuffle: 'global' }));
    const refused: [Uint8Array, RawOpen['resume'], RegExp][] = [
      [token, { shuffle: 'global' }, /made with shuffle blocks \(shuffle_window 4\) but the request asks for global/],
      [
        token,
        { shuffle: 'blocks', shuffleWindow: 8 },
        /made with shuffle blocks \(shuffle_window 4\) but the request asks for blocks \(shuffle_window 8\)/,
      ],
      [token, { shuffleWindow: 5 }, /asks for blocks \(shuffle_window 5\)/],
      [global, { shuffle: 'blocks' }, /made with shuffle global but the request asks for blocks/],
    ];
    for (const [t, asked, message] of refused) {
      const err = failure({ resume: { token: t, ...asked } });
      expect(err.code, JSON.stringify(asked)).toBe('FAILED_PRECONDITION');
      expect(err.message).toMatch(message);
    }
    for (const [t, asked] of [
      [token, { shuffle: 'blocks', shuffleWindow: 4 }],
      [token, { shuffle: 'blocks' }],
      [token, {}],
      [global, { shuffle: 'global' }],
    ] as const) {
      expect(() => core.open({ resume: { token: t, ...asked } }), JSON.stringify(asked)).not.toThrow();
    }
  });

  it('a token whose order this server cannot make is refused, naming the field', () => {
    const token = tokenOf(blocks(4));
    const forge = (edit: (s: Record<string, unknown>) => void): Uint8Array => {
      const p = decodeToken(token, core.catalog.reader.fingerprint) as TokenPayload & {
        spec: StreamSpec & { shuffle: Record<string, unknown> };
      };
      const shuffle = { ...p.spec.shuffle };
      edit(shuffle);
      const spec = { ...p.spec, shuffle } as unknown as StreamSpec;
      return encodeToken({ ...p, spec, specHash: specHash(spec) });
    };
    const cases: [(s: Record<string, unknown>) => void, string, RegExp][] = [
      [
        (s) => (s.blockTokens = 4096),
        'FAILED_PRECONDITION',
        /cuts blocks of 4096 tokens, this server cuts blocks of 16384/,
      ],
      [
        (s) => (s.window = 0),
        'INVALID_ARGUMENT',
        /resume\.token\.spec\.shuffle\.window: must be an integer in \[1, 65536\]/,
      ],
      [(s) => (s.name = 'global'), 'INVALID_ARGUMENT', /resume\.token\.spec\.shuffle\.name/],
      [(s) => (s.extra = 1), 'INVALID_ARGUMENT', /resume\.token\.spec\.shuffle\.extra/],
    ];
    for (const [edit, code, message] of cases) {
      const err = failure({ resume: { token: forge(edit) } });
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
    }
  });
});

describe('shuffle in the spec', () => {
  it('refuses bad values with INVALID_ARGUMENT naming the field', () => {
    const cases: [Spec, RegExp][] = [
      [trainSpec({ shuffle: 'random' }), /^shuffle: "random" is not one of global, blocks/],
      [trainSpec({ shuffle: 'blocks', shuffleWindow: 65_537 }), /^shuffle_window: must be an integer in \[1, 65536\]/],
      [trainSpec({ shuffle: 'global', shuffleWindow: 4 }), /^shuffle_window: applies to shuffle "blocks" only/],
      [
        { split: 'test', batchSize: 2, seqLen: 2048, packing: 'packed', shuffle: 'blocks' },
        /^shuffle: evaluation splits are served whole and in order/,
      ],
      [
        { split: 'heldout', batchSize: 2, seqLen: 2048, packing: 'packed', shuffleWindow: 3 },
        /^shuffle_window: evaluation splits are served whole and in order/,
      ],
    ];
    for (const [spec, message] of cases) {
      const err = failure({ spec });
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toMatch(message);
    }
    const err = failure({ spec: trainSpec({ shuffleWindow: 4 }) }, globalCore);
    expect(err.message).toMatch(
      /^shuffle_window: applies to shuffle "blocks" only; this stream's shuffle is "global" \(the server default\)/,
    );
  });

  it('"global" is the stream without the field, byte for byte, whatever the server default', async () => {
    const window4 = await openCore(inject('sampleIndex'), { 'stream.shuffle_window': '4' });
    const bytes = (c: DataServiceCore, spec: Spec): string[] =>
      take(c.open({ spec }), 3).batches.map((b) => `${content(b)} ${Buffer.from(b.resumeToken).toString('hex')}`);
    const plain = bytes(globalCore, trainSpec({ seed: 4 }));
    expect(bytes(globalCore, trainSpec({ seed: 4, shuffle: 'global' }))).toEqual(plain);
    expect(bytes(core, trainSpec({ seed: 4, shuffle: 'global' }))).toEqual(plain);
    // "" and 0 take the server's defaults: blocks with a window of 64 (config/default.yaml), or of 4.
    expect(bytes(core, trainSpec({ seed: 4 }))).toEqual(bytes(core, blocks(64, { seed: 4 })));
    expect(bytes(window4, trainSpec({ seed: 4 }))).toEqual(bytes(core, blocks(4, { seed: 4 })));
    expect(bytes(core, trainSpec({ seed: 4 }))).not.toEqual(plain);
    expect(bytes(core, trainSpec({ seed: 4 }))).not.toEqual(bytes(window4, trainSpec({ seed: 4 })));
  });
});

describe('shuffle "blocks": the mixture holds', () => {
  it.each([
    ['natural', {}],
    ['domains', { weights: { speech: 0.5, music: 0.3, audio: 0.2 } }],
    ['temperature T=5', { within: 'temperature', temperature: 5 }],
  ] as const)('%s: within 0.5 pp per task and per domain after 10k examples (packing none)', (_, m) => {
    const session = core.open({ spec: blocks(2, { packing: 'none', batchSize: 64, mixture: m }) });
    const batches: WireBatch[] = [];
    for (let n = 0; n < 10_000;) {
      const b = take(session, 1).batches[0]!;
      batches.push(b);
      n += b.turnTask.length;
    }
    const tasks = core.catalog.reader.tasks;
    const want = expectedTargets(
      m,
      tasks,
      tasks.map((t) => (t.unseen ? 0 : t.counts[0])),
    );
    const got = servedPerTask(batches, tasks.length);
    for (let t = 0; t < tasks.length; t++) if (want[t] === 0) expect(got[t], tasks[t]!.path).toBe(0);
    const dev = worstDeviation(got, want, (t) => tasks[t]!.domain);
    expect(dev.task).toBeLessThan(0.005);
    expect(dev.group).toBeLessThan(0.005);
  });
});
