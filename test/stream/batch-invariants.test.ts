import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamDataset, type DatasetOptions } from '../../clients/ts/flanstream-client.js';
import { IGNORE_INDEX } from '../../clients/ts/wire-decode.js';
import type { Batch } from '../../clients/ts/wire-types.js';
import { IndexOracle } from '../helpers/index-oracle.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Every segment of many batches, checked against the index read independently: the chat
 * template rendering of its record(s), labels exactly on the answers and their <|im_end|>,
 * positions, segment ids, cu_seqlens, max_seqlen, rows never crossed, padding after the last
 * segment, and the segment metadata.
 */
describe('batch invariants', () => {
  let ts: TestServer;
  let oracle: IndexOracle;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    oracle = await IndexOracle.open(inject('sampleIndex'));
  });
  afterAll(async () => {
    oracle?.close();
    await ts?.stop();
  });

  async function take(opts: DatasetOptions, n: number): Promise<Batch[]> {
    const ds = new FlanStreamDataset(ts.target, { ...opts, maxBatches: n });
    const out: Batch[] = [];
    for await (const b of ds) out.push(b);
    ds.close();
    expect(out).toHaveLength(n);
    return out;
  }

  /** Checks one batch; returns its padding token count. */
  function check(b: Batch, packing: string): number {
    const { batchSize: B, seqLen: L } = b;
    const { pad } = oracle.special;
    for (const a of [b.inputIds, b.labels, b.positionIds, b.segmentIds]) expect(a).toHaveLength(B * L);
    expect(b.cuSeqlens).toHaveLength(b.segments.length + 1);
    expect(b.cuSeqlens[0]).toBe(0);
    expect(b.maxSeqlen).toBe(Math.max(0, ...b.segments.map((s) => s.length)));
    const used = new Array<number>(B).fill(0);
    const count = new Array<number>(B).fill(0);
    b.segments.forEach((seg, i) => {
      const at = `step ${b.step} segment ${i} (${seg.uuids.join(', ')})`;
      expect(b.cuSeqlens[i + 1]! - b.cuSeqlens[i]!, at).toBe(seg.length);
      expect(seg.row, at).toBeLessThan(B);
      expect(seg.offset, `${at}: segments of a row are back to back`).toBe(used[seg.row]);
      expect(seg.offset + seg.length, `${at}: crosses its row`).toBeLessThanOrEqual(L);
      used[seg.row]! += seg.length;
      const ordinal = ++count[seg.row]!;
      const recs = seg.uuids.map((u) => oracle.record(u));
      const rendered = recs.map((r, k) => oracle.render(r, k > 0));
      const tokens = rendered.flatMap((r) => r.tokens);
      const supervised = rendered.flatMap((r) => r.supervised);
      const base = seg.row * L + seg.offset;
      const slice = (a: Int32Array): number[] => Array.from(a.subarray(base, base + seg.length));
      expect(slice(b.inputIds), `${at}: tokens = chat template of the record(s)`).toEqual(tokens);
      expect(slice(b.labels), `${at}: labels`).toEqual(tokens.map((t, j) => (supervised[j] ? t : IGNORE_INDEX)));
      expect(slice(b.positionIds), `${at}: positions`).toEqual(tokens.map((_, j) => j));
      expect(slice(b.segmentIds), `${at}: segment ids`).toEqual(tokens.map(() => ordinal));
      expect(seg.task, at).toBe(recs[0]!.task);
      expect(seg.turnTasks, at).toEqual(recs.map((r) => r.task));
      expect(seg.domain, at).toBe(recs[0]!.domain);
      expect(seg.textTokens + seg.audioTokens, at).toBe(seg.length);
      if (recs.length === 1) expect(seg.audioTokens, `${at}: audio tokens`).toBe(recs[0]!.audioTokens);
    });
    let padding = 0;
    for (let r = 0; r < B; r++) {
      if (packing === 'none') expect(count[r], `step ${b.step} row ${r}: one segment`).toBe(1);
      const tail = (a: Int32Array): number[] => Array.from(a.subarray(r * L + used[r]!, (r + 1) * L));
      const n = L - used[r]!;
      padding += n;
      expect(tail(b.inputIds), `row ${r} padding`).toEqual(new Array(n).fill(pad));
      expect(tail(b.labels)).toEqual(new Array(n).fill(IGNORE_INDEX));
      expect(tail(b.positionIds)).toEqual(new Array(n).fill(0));
      expect(tail(b.segmentIds)).toEqual(new Array(n).fill(0));
    }
    return padding;
  }

  // Most sample tasks have no record under 512 tokens; at 512 the mixture names tasks that fit.
  const short = {
    weights: {
      'speech/Speech Recognition/ASR': 1,
      'speech/Speech Enhancement': 1,
      'music/Multiple Music Reasoning': 1,
      'audio/Audio Separation': 2,
    },
  };
  for (const seqLen of [512, 2048, 4096]) {
    for (const packing of ['none', 'packed', 'multiturn'] as const) {
      it(`holds for every segment (seq_len ${seqLen}, ${packing})`, async () => {
        const batches = await take(
          {
            split: 'train',
            batchSize: 4,
            seqLen,
            packing,
            seed: seqLen,
            ...(seqLen === 512 ? { mixture: short } : {}),
          },
          12,
        );
        let padding = 0;
        for (const b of batches) {
          padding += check(b, packing);
          // Stats count the global stream's padding (world size 1: exactly this stream's).
          expect(b.stats.paddingTokens, `step ${b.step}`).toBe(padding);
        }
        if (packing !== 'none')
          expect(
            batches.some((b) => b.segments.length > b.batchSize),
            'some row holds several segments',
          ).toBe(true);
      });
    }
  }

  it('holds for evaluation streams (test split, packed) and for every held-out record', async () => {
    for (const opts of [
      { split: 'test', packing: 'packed' },
      { split: 'heldout', packing: 'none', heldout: 'loco-music-caption' },
    ] as const) {
      const ds = new FlanStreamDataset(ts.target, { ...opts, batchSize: 4, seqLen: 4096 });
      let n = 0;
      for await (const b of ds) {
        check(b, opts.packing);
        n += b.segments.length;
      }
      expect(ds.summary?.reason).toBe('complete');
      expect(n).toBe(ds.summary!.examples);
      ds.close();
    }
  });

  it('examples packing: prompts end at the assistant header; answers are the output and its <|im_end|>', async () => {
    const ds = new FlanStreamDataset(ts.target, { split: 'dev', packing: 'examples', batchSize: 5, seqLen: 4096 });
    const { imEnd } = oracle.special;
    let n = 0;
    for await (const b of ds) {
      expect(b.segments).toHaveLength(0);
      for (const e of b.examples ?? []) {
        const rec = oracle.record(e.uuid);
        const r = oracle.render(rec);
        const promptLen = r.supervised.indexOf(true);
        expect(Array.from(e.promptTokens), e.uuid).toEqual(r.tokens.slice(0, promptLen));
        expect(Array.from(e.answerTokens), e.uuid).toEqual([...rec.output, imEnd]);
        expect(e.task).toBe(rec.task);
        n++;
      }
    }
    expect(n).toBe(ds.summary?.totalExamples);
    ds.close();
  });
});
