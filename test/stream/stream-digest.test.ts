import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { encodeStreamResponse } from '../../src/server/response-encoder.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawOpen } from '../../src/stream/stream-request.js';
import type { WireResponse } from '../../src/stream/wire-types.js';
import { openCore } from '../helpers/core-streams.js';

/**
 * Behaviour lock for refactors: a sha256 over the wire-encoded messages (the exact protobuf bytes a
 * client receives: tokens, segment columns, loss spans, stats, resume tokens, end messages) of
 * streams covering every packing mode (train: none, packed, multiturn; evaluation: none, packed,
 * examples), every audio layout (flat, delay; all codebooks, 1, k), a resume mid-stream and two
 * ranks, on the 3,000-record sample corpus (seed 0) that test/global-setup.ts indexes.
 *
 * The digests in test/fixtures/stream-digests.json were generated from the code before the
 * packing strategies moved into src/pack. A changed digest means a changed stream, i.e. a
 * behaviour change: a refactor must never change one. Only after a deliberate, reviewed change
 * of what is served (or of the sample corpus) regenerate them with
 *   WRITE_STREAM_DIGESTS=1 npx vitest run test/stream/stream-digest.test.ts
 * and say so in the commit message.
 */
const FIXTURE = new URL('../fixtures/stream-digests.json', import.meta.url);
const WRITE = process.env.WRITE_STREAM_DIGESTS === '1';

type Spec = NonNullable<RawOpen['spec']>;
// The cases from before the record order was a choice pin the order they were made with.
const train = (over: Partial<Spec>): Spec => ({
  split: 'train',
  batchSize: 4,
  seqLen: 2048,
  packing: 'packed',
  seed: 7,
  shuffle: 'global',
  ...over,
});

/** Train streams: `n` batches each. */
const TRAIN: Record<string, { spec: Spec; n: number }> = {
  'train none': { spec: train({ packing: 'none' }), n: 4 },
  'train packed': { spec: train({}), n: 4 },
  'train multiturn': { spec: train({ packing: 'multiturn', seqLen: 4096 }), n: 4 },
  'train multiturn max_turns 2': { spec: train({ packing: 'multiturn', seqLen: 4096, maxTurns: 2, seed: 3 }), n: 3 },
  'train packed window 1 (next-fit)': { spec: train({ window: 1 }), n: 3 },
  'train packed overlong truncate': { spec: train({ seqLen: 512, overlong: 'truncate' }), n: 3 },
  'train none overlong truncate': { spec: train({ packing: 'none', seqLen: 512, overlong: 'truncate' }), n: 3 },
  'train packed rank 0 of 2': { spec: train({ rank: 0, worldSize: 2 }), n: 3 },
  'train packed rank 1 of 2': { spec: train({ rank: 1, worldSize: 2 }), n: 3 },
  'train multiturn rank 1 of 2': { spec: train({ packing: 'multiturn', seqLen: 4096, rank: 1, worldSize: 2 }), n: 3 },
};
for (const packing of ['none', 'packed', 'multiturn']) {
  for (const [layout, codebooks] of [
    ['flat', 1],
    ['flat', 3],
    ['delay', 0],
    ['delay', 1],
    ['delay', 3],
  ] as const) {
    TRAIN[`train ${packing} ${layout} k=${codebooks}`] = {
      spec: train({ packing, seqLen: 4096, audio: { layout, codebooks } }),
      n: 2,
    };
  }
}
/** The blocks order (the server default): windows of 1, 4 and the default, every train packing mode, two ranks. */
for (const packing of ['none', 'packed', 'multiturn'])
  TRAIN[`train ${packing} blocks (default window)`] = { spec: train({ packing, seqLen: 4096, shuffle: '' }), n: 4 };
TRAIN['train packed blocks window 1'] = { spec: train({ shuffle: 'blocks', shuffleWindow: 1 }), n: 4 };
TRAIN['train packed blocks window 4 rank 1 of 2'] = {
  spec: train({ shuffle: 'blocks', shuffleWindow: 4, rank: 1, worldSize: 2 }),
  n: 3,
};

/** Evaluation streams: finite, drained to their end message. */
const EVAL: Record<string, Spec> = {
  'test none': { split: 'test', batchSize: 4, seqLen: 2048, packing: 'none', heldout: { name: 'unseen-flag' } },
  'test packed': { split: 'test', batchSize: 4, seqLen: 2048, packing: 'packed', heldout: { name: 'unseen-flag' } },
  'test examples': { split: 'test', batchSize: 5, seqLen: 2048, packing: 'examples', heldout: { name: 'unseen-flag' } },
  'test packed seq_len 512 overlong truncate': {
    split: 'test',
    batchSize: 4,
    seqLen: 512,
    packing: 'packed',
    heldout: { name: 'unseen-flag' },
    overlong: 'truncate',
  },
  'test none seq_len 512 overlong drop': {
    split: 'test',
    batchSize: 4,
    seqLen: 512,
    packing: 'none',
    heldout: { name: 'unseen-flag' },
    overlong: 'drop',
  },
  'dev packed rank 1 of 2': {
    split: 'dev',
    batchSize: 3,
    seqLen: 2048,
    packing: 'packed',
    heldout: { name: 'none' },
    rank: 1,
    worldSize: 2,
  },
  'heldout none': {
    split: 'heldout',
    batchSize: 2,
    seqLen: 2048,
    packing: 'none',
    heldout: { name: 'music-reasoning' },
  },
  'heldout packed delay k=1': {
    split: 'heldout',
    batchSize: 2,
    seqLen: 2048,
    packing: 'packed',
    heldout: { name: 'music-reasoning' },
    audio: { layout: 'delay', codebooks: 1 },
  },
  'heldout examples rank 0 of 2': {
    split: 'heldout',
    batchSize: 3,
    seqLen: 2048,
    packing: 'examples',
    heldout: { name: 'music-reasoning' },
    rank: 0,
    worldSize: 2,
  },
};

/**
 * What the first batch of every evaluation call says before anything is served (the set's items
 * that fit no row: Batch.task_dropped, dropped_fit_seq_len) is left out of the digests: it is a
 * figure about the set, not served content, and the end message (digested) carries the same
 * count; eval-dropped.test.ts checks both against the corpus. Everything served is digested.
 */
function served(m: WireResponse): WireResponse {
  return 'batch' in m ? { batch: { ...m.batch, taskDropped: [], droppedFitSeqLen: 0 } } : m;
}

/** Every message a session yields (up to `max` batches, then its end if it ended), wire-encoded. */
function messages(core: DataServiceCore, raw: RawOpen, max = Number.MAX_SAFE_INTEGER): Buffer[] {
  const session = core.open(raw);
  const out: Buffer[] = [];
  let batches = 0;
  while (batches < max) {
    const m = session.next() as WireResponse | undefined;
    if (!m) break;
    out.push(encodeStreamResponse(served(m)));
    if ('end' in m) break;
    batches++;
  }
  return out;
}

function sha(msgs: readonly Buffer[]): string {
  const h = createHash('sha256');
  for (const m of msgs) h.update(m);
  return h.digest('hex');
}

describe('stream digests (byte-identical streams across refactors)', () => {
  let core: DataServiceCore;
  const got: Record<string, string> = {};
  const want: Record<string, string> = WRITE
    ? {}
    : (JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, string>);
  beforeAll(async () => {
    core = await openCore(inject('sampleIndex'));
  });
  afterAll(() => {
    core?.catalog.reader.close();
    if (WRITE) writeFileSync(FIXTURE, JSON.stringify(got, null, 2) + '\n');
  });

  /** Records a stream's digest; returns its name if it differs from the checked-in one. */
  const check = (name: string, msgs: readonly Buffer[]): string[] => {
    expect(msgs.length, name).toBeGreaterThan(1);
    got[name] = sha(msgs);
    return WRITE || got[name] === want[name] ? [] : [`${name}: the stream changed`];
  };

  it('train streams of every packing mode and audio layout match the checked-in digests', () => {
    const changed = Object.entries(TRAIN).flatMap(([name, { spec, n }]) =>
      check(name, messages(core, { spec: { ...spec, maxBatches: n } })),
    );
    expect(changed).toEqual([]);
  });

  it('finite evaluation streams of every packing mode match, end message included', () => {
    const changed = Object.entries(EVAL).flatMap(([name, spec]) => check(name, messages(core, { spec })));
    expect(changed).toEqual([]);
  });

  it('a stream resumed mid-way continues byte for byte, and matches its digest', () => {
    const changed: string[] = [];
    for (const name of ['train packed', 'train multiturn', 'train packed blocks window 1', 'test packed']) {
      const spec = name.startsWith('train') ? TRAIN[name]!.spec : EVAL[name]!;
      const n = name.startsWith('train') ? 6 : 0;
      const session = core.open({ spec: { ...spec, maxBatches: n } });
      const first = [session.next(), session.next(), session.next()];
      const token = first[2] && 'batch' in first[2] ? first[2].batch.resumeToken : undefined;
      expect(token, name).toBeDefined();
      const whole = messages(core, { spec: { ...spec, maxBatches: n } });
      const rest = messages(core, {
        resume: { token, maxBatches: n ? n - 3 : 0, rank: spec.rank, worldSize: spec.worldSize },
      });
      expect(
        rest.map((m) => sha([m])),
        `${name} resumed after batch 2`,
      ).toEqual(whole.slice(3).map((m) => sha([m])));
      changed.push(...check(`${name} resumed after batch 2`, rest));
    }
    expect(changed).toEqual([]);
  });

  it('has a digest for every stream and no stale entry', () => {
    if (!WRITE) expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  });
});
