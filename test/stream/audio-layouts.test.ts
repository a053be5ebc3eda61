import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { WireBatch } from '../../src/stream/wire-types.js';
import { AudioOracle, matchSpans, servedSpans } from '../helpers/audio-oracle.js';
import { digests } from '../helpers/batch-digests.js';
import { openCore, segments, take, trainSpec, type Spec } from '../helpers/core-streams.js';

/**
 * Audio layouts (docs/real-data.md) against an independent oracle: every `<|SOA|>…<|EOA|>` span of
 * every served segment equals the layout transform of its clip's .npy, recomputed in the test
 * from the corpus files and the vocabulary layout, for every layout and every k, and across
 * resume, ranks and multi-turn packing.
 */
describe('audio layouts', () => {
  let core: DataServiceCore;
  let oracle: AudioOracle;
  let q = 0;
  beforeAll(async () => {
    core = await openCore(inject('sampleIndex'));
    const v = core.catalog.reader.manifest.vocab;
    q = v.codebooks;
    oracle = new AudioOracle(inject('sampleCorpus'), SAMPLE_AUDIO_ROOT, {
      audioOffset: v.audioOffset,
      codebookSize: v.codebookSize,
      audioPadId: v.audioPadId,
      soa: v.special.soa,
      eoa: v.special.eoa,
    });
  });
  afterAll(() => core?.catalog.reader.close());

  /** Oracle problems of a batch served with `layout` over k codebooks; also checks the audio-token column. */
  function check(batches: readonly WireBatch[], layout: string, k: number): { problems: string[]; spans: number } {
    const v = core.catalog.reader.manifest.vocab;
    const problems: string[] = [];
    let spans = 0;
    for (const b of batches) {
      for (const seg of segments(b)) {
        const served = servedSpans(seg.tokens, v.special.soa, v.special.eoa);
        spans += served.length;
        for (const p of matchSpans(served, oracle.expected(seg.uuids, layout, k)))
          problems.push(`step ${b.step} ${seg.uuids.join('+')}: ${p}`);
        const audio = served.reduce((n, s) => n + s.length, 0);
        if (audio !== seg.audioTokens)
          problems.push(`step ${b.step} ${seg.uuids[0]}: audio column ${seg.audioTokens}, spans hold ${audio}`);
        if (seg.length > b.seqLen) problems.push(`step ${b.step}: segment of ${seg.length} > seq_len`);
      }
    }
    return { problems, spans };
  }

  const stream = (spec: Spec, n: number): WireBatch[] => take(core.open({ spec }), n).batches;

  it('serves every layout and every k exactly as the oracle recomputes it from the .npy files', () => {
    expect(q).toBe(8);
    for (const layout of ['flat', 'delay']) {
      for (let k = 0; k <= q; k++) {
        const batches = stream(trainSpec({ batchSize: 4, seqLen: 4096, seed: 5, audio: { codebooks: k, layout } }), 3);
        const { problems, spans } = check(batches, layout, k);
        expect(problems.slice(0, 3), `${layout} k=${k}`).toEqual([]);
        expect(spans, `${layout} k=${k}`).toBeGreaterThan(20);
      }
    }
  });

  it('holds across resume (byte-identical continuation), ranks and multi-turn packing', () => {
    for (const [layout, k] of [
      ['delay', 3],
      ['flat', 1],
      ['delay', 0],
    ] as const) {
      const audio = { codebooks: k, layout };
      const whole = stream(trainSpec({ batchSize: 2, seqLen: 2048, packing: 'multiturn', seed: 9, audio }), 4);
      expect(check(whole, layout, k).problems.slice(0, 3)).toEqual([]);
      expect(
        whole.some((b) => b.segTurns.some((n) => n > 1)),
        'multi-turn segments',
      ).toBe(true);
      const resumed = take(core.open({ resume: { token: whole[1]!.resumeToken } }), 2).batches;
      expect(digests(resumed)).toEqual(digests(whole.slice(2)));
      const ranks = [0, 1].map((rank) =>
        stream(trainSpec({ batchSize: 1, seqLen: 2048, packing: 'multiturn', seed: 9, audio, rank, worldSize: 2 }), 2),
      );
      for (const r of ranks) expect(check(r, layout, k).problems.slice(0, 3)).toEqual([]);
      // Rank r of step s holds global rows [2s + r]: the W = 1 stream's rows, in the layout.
      expect(ranks[0]![0]!.uuids.concat(ranks[1]![0]!.uuids)).toEqual(whole[0]!.uuids);
    }
  });

  it('serves evaluation prompts in the layout too', () => {
    const { batches } = take(
      core.open({
        spec: {
          split: 'test',
          batchSize: 8,
          seqLen: 4096,
          packing: 'packed',
          audio: { codebooks: 2, layout: 'delay' },
        },
      }),
      3,
    );
    expect(check(batches, 'delay', 2).problems.slice(0, 3)).toEqual([]);
  });

  it('leaves the default stream byte for byte as it was: flat over all codebooks, however spelled', () => {
    const base = trainSpec({ batchSize: 4, seqLen: 2048, seed: 2 });
    const plain = digests(stream(base, 3));
    for (const audio of [
      { codebooks: 0, layout: 'flat' },
      { codebooks: q, layout: 'flat' },
      { codebooks: 0, layout: '' },
      null,
    ]) {
      expect(digests(stream({ ...base, audio }, 3)), JSON.stringify(audio)).toEqual(plain);
    }
  });

  it("packs, drops and counts by the layout's length: examples over-long only when delayed follow the overlong policy", () => {
    // 8 codebooks delayed add 7 × 8 + … tokens per clip: at a tight seq_len more examples overflow.
    const spec = (audio: Spec['audio'], overlong: string): Spec =>
      trainSpec({ batchSize: 4, seqLen: 640, packing: 'none', seed: 1, overlong, audio });
    const last = (bs: WireBatch[]): WireBatch['stats'] => bs[bs.length - 1]!.stats;
    const flat = stream(spec(undefined, 'drop'), 6);
    const delayed = stream(spec({ codebooks: 0, layout: 'delay' }, 'drop'), 6);
    expect(check(delayed, 'delay', 0).problems.slice(0, 3)).toEqual([]);
    expect(last(delayed).dropped).toBeGreaterThan(last(flat).dropped);
    const truncated = stream(spec({ codebooks: 0, layout: 'delay' }, 'truncate'), 6);
    expect(check(truncated, 'delay', 0).problems.slice(0, 3)).toEqual([]);
    expect(last(truncated).truncated).toBeGreaterThan(0);
    // One codebook is shorter than all eight: fewer drops than flat.
    const one = stream(spec({ codebooks: 1, layout: 'flat' }, 'drop'), 6);
    expect(last(one).dropped).toBeLessThan(last(flat).dropped);
    // Audio token stats are the layout's: the same records cost more tokens delayed.
    const tokens = (bs: WireBatch[]): number =>
      last(bs).taskAudioTokens.reduce((a, b) => a + b, 0) / last(bs).taskExamples.reduce((a, b) => a + b, 0);
    expect(tokens(delayed)).toBeGreaterThan(tokens(flat));
  });

  it('reports audio seconds per domain from codec frames, the same under every layout', () => {
    const rate = core.catalog.reader.manifest.vocab.frameRate;
    const v = core.catalog.reader.manifest.vocab;
    const served: number[][] = [];
    for (const [layout, k] of [
      ['flat', 0],
      ['delay', 0],
      ['flat', 1],
      ['delay', 3],
    ] as const) {
      // One example per row and room for every one: the same examples whatever the layout.
      const batches = stream(
        trainSpec({ batchSize: 4, seqLen: 8192, packing: 'none', seed: 4, audio: { codebooks: k, layout } }),
        4,
      );
      const kk = k === 0 ? q : k;
      const frames = [0, 0, 0];
      for (const b of batches) {
        segments(b).forEach((seg, i) => {
          const d = b.segDomain[i]!;
          for (const s of servedSpans(seg.tokens, v.special.soa, v.special.eoa))
            frames[d] = frames[d]! + (s.length - 2) / kk - (layout === 'delay' ? kk - 1 : 0);
        });
      }
      const got = batches.at(-1)!.stats.domainAudioSeconds;
      got.forEach((x, d) => expect(x, `${layout} k=${k} domain ${d}`).toBeCloseTo(frames[d]! / rate, 6));
      served.push(got);
    }
    expect(served[0]!.reduce((a, x) => a + x, 0)).toBeGreaterThan(0);
    for (const s of served) expect(s).toEqual(served[0]);
  });

  it('refuses a bad audio spec naming the field, and a resume that asks for another layout', () => {
    expect(() => core.open({ spec: trainSpec({ audio: { codebooks: 9, layout: 'flat' } }) })).toThrow(
      /audio\.codebooks: must be 0 \(all\) or 1…8: the corpus's clips have 8 codebooks, got 9/,
    );
    expect(() => core.open({ spec: trainSpec({ audio: { codebooks: 1, layout: 'interleave' } }) })).toThrow(
      /audio\.layout: "interleave" is not one of flat, delay/,
    );
    const [b] = stream(trainSpec({ batchSize: 2, seqLen: 2048, audio: { codebooks: 2, layout: 'delay' } }), 1);
    expect(() => core.open({ resume: { token: b!.resumeToken, audio: { codebooks: 0, layout: '' } } })).toThrow(
      /made with audio \{codebooks: 2, layout: delay\} but the request asks for \{flat, all codebooks\}/,
    );
    expect(() =>
      core.open({ resume: { token: b!.resumeToken, audio: { codebooks: 2, layout: 'delay' } } }),
    ).not.toThrow();
  });
});
