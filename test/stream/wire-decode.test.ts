import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { FlanStreamError } from '../../clients/ts/errors.js';
import { BatchDecoder, denseArrays, IGNORE_INDEX, int32s, segmentColumns } from '../../clients/ts/wire-decode.js';
import type { CorpusInfo, WireBatch } from '../../clients/ts/wire-types.js';

const le = (xs: number[]): Buffer => {
  const b = Buffer.alloc(xs.length * 4);
  xs.forEach((x, i) => b.writeInt32LE(x, i * 4));
  return b;
};

/** Two rows of 6: row 0 holds segments [10 11 12] and [20 21], row 1 holds [30 31 32 33]. */
function sample(over: Partial<WireBatch> = {}): WireBatch {
  return {
    step: 7,
    rank: 0,
    worldSize: 1,
    batchSize: 2,
    seqLen: 6,
    padId: 99,
    tokens: le([10, 11, 12, 20, 21, 30, 31, 32, 33]),
    segRow: [0, 0, 1],
    segOffset: [0, 3, 0],
    segLength: [3, 2, 4],
    segTask: [1, 0, 1],
    segDomain: [1, 0, 1],
    segTextTokens: [3, 2, 1],
    segAudioTokens: [0, 0, 3],
    segTurns: [1, 1, 2],
    uuids: ['a', 'b', 'c', 'd'],
    turnTask: [1, 0, 1, 0],
    lossSpans: [2, 3, 4, 5, 6, 7, 7, 9],
    resumeToken: Buffer.from([1, 2, 3]),
    stats: {
      taskExamples: [1, 3],
      taskTextTokens: [2, 4],
      taskAudioTokens: [0, 3],
      taskTarget: [0.25, 0.75],
      domainExamples: [1, 3, 0],
      domainTarget: [0.25, 0.75, 0],
      paddingTokens: 3,
      dropped: 1,
      truncated: 0,
      taskDropped: [],
      taskTruncated: [],
      sinceUpdateStep: 0,
      taskExamplesSinceUpdate: [],
      domainExamplesSinceUpdate: [],
      windowStartStep: 0,
      taskExamplesWindow: [],
      domainExamplesWindow: [],
      taskEpochs: [],
      domainAudioSeconds: [],
    },
    heldoutFingerprint: 'fp',
    examples: [],
    totalSteps: 0,
    taskDropped: [],
    droppedFitSeqLen: 0,
    ...over,
  };
}

const info = {
  tasks: [
    { index: 0, path: 'speech/ASR/ASR', domain: 'speech' },
    { index: 1, path: 'music/Caption/Caption', domain: 'music' },
  ],
  domains: ['speech', 'music', 'audio'],
} as unknown as CorpusInfo;

const P = 99;
const X = IGNORE_INDEX;

describe('wire decoding', () => {
  it('rebuilds the dense arrays, cu_seqlens and max_seqlen', () => {
    const d = denseArrays(sample());
    expect(Array.from(d.inputIds)).toEqual([10, 11, 12, 20, 21, P, 30, 31, 32, 33, P, P]);
    expect(Array.from(d.labels)).toEqual([X, X, 12, X, 21, X, X, 31, 32, 33, X, X]);
    expect(Array.from(d.positionIds)).toEqual([0, 1, 2, 0, 1, 0, 0, 1, 2, 3, 0, 0]);
    expect(Array.from(d.segmentIds)).toEqual([1, 1, 1, 2, 2, 0, 1, 1, 1, 1, 0, 0]);
    expect(Array.from(d.cuSeqlens)).toEqual([0, 3, 5, 9]);
    expect(d.maxSeqlen).toBe(4);
  });

  it('names tasks, domains and turns, and summarizes stats', () => {
    const b = new BatchDecoder(info).decode(sample());
    expect(b.segments[2]).toEqual({
      row: 1,
      offset: 0,
      length: 4,
      task: 'music/Caption/Caption',
      taskIndex: 1,
      domain: 'music',
      uuids: ['c', 'd'],
      turnTasks: ['music/Caption/Caption', 'speech/ASR/ASR'],
      textTokens: 1,
      audioTokens: 3,
    });
    expect(b.stats.examples).toBe(4);
    expect(b.stats.tasks['music/Caption/Caption']).toEqual({
      index: 1,
      examples: 3,
      textTokens: 4,
      audioTokens: 3,
      target: 0.75,
      realized: 0.75,
    });
    expect(b.stats.domains.music).toEqual({ examples: 3, textTokens: 4, audioTokens: 3, target: 0.75, realized: 0.75 });
    expect(b.stats.domains.audio!.examples).toBe(0);
    expect([b.step, b.batchSize, b.seqLen, b.stats.dropped]).toEqual([7, 2, 6, 1]);
    expect(new BatchDecoder().decode(sample()).segments[0]!.task).toBe('#1');
  });

  it("reads the segment columns: token ranges, turns and each turn's loss span relative to its segment", () => {
    const cols = segmentColumns(sample());
    expect(cols.map((c) => [c.start, c.length, c.uuids, c.turnTaskIndices, c.loss])).toEqual([
      [0, 3, ['a'], [1], [[2, 3]]],
      [3, 2, ['b'], [0], [[1, 2]]],
      [
        5,
        4,
        ['c', 'd'],
        [1, 0],
        [
          [1, 2],
          [2, 4],
        ],
      ],
    ]);
    expect(cols[2]).toMatchObject({ row: 1, offset: 0, taskIndex: 1, domainIndex: 1, textTokens: 1, audioTokens: 3 });
  });

  it('decodes evaluation examples and stream ends', () => {
    const dec = new BatchDecoder(info);
    const ex = dec.decode(
      sample({
        examples: [
          { uuid: 'u', task: 0, promptTokens: le([1, 2]), answerTokens: le([3]), answerText: 'hi', answerAudioIds: [] },
        ],
      }),
    ).examples!;
    expect(ex[0]).toMatchObject({ uuid: 'u', task: 'speech/ASR/ASR', answerText: 'hi' });
    expect(Array.from(ex[0]!.promptTokens)).toEqual([1, 2]);
    const s = dec.summarize({
      taskExamples: [2, 0],
      totalTaskExamples: [4, 1],
      examples: 2,
      totalExamples: 5,
      resumeToken: Buffer.alloc(0),
      reason: 'complete',
      taskDropped: [],
    });
    expect(s.taskExamples).toEqual({ 'speech/ASR/ASR': 2, 'music/Caption/Caption': 0 });
    expect(s.totalTaskExamples).toEqual({ 'speech/ASR/ASR': 4, 'music/Caption/Caption': 1 });
  });

  it('reads little-endian int32 from unaligned bytes', () => {
    const buf = Buffer.concat([Buffer.from([0]), Buffer.from(le([-1, 70000]))]).subarray(1);
    expect(Array.from(int32s(buf))).toEqual([-1, 70000]);
  });

  /** The dense arrays token by token, the obvious way (the decoder copies blocks instead). */
  function reference(b: WireBatch): number[][] {
    const size = b.batchSize * b.seqLen;
    const toks = Array.from({ length: b.tokens.length / 4 }, (_, i) => b.tokens.readInt32LE(i * 4));
    const sup = toks.map(() => false);
    for (let k = 0; k < b.lossSpans.length; k += 2)
      for (let t = b.lossSpans[k]!; t < b.lossSpans[k + 1]!; t++) sup[t] = true;
    const [ids, lab, pos, seg] = [
      Array<number>(size).fill(b.padId),
      Array<number>(size).fill(X),
      Array<number>(size).fill(0),
      Array<number>(size).fill(0),
    ];
    const count = new Map<number, number>();
    let k = 0;
    b.segLength.forEach((n, i) => {
      const row = b.segRow[i]!;
      count.set(row, (count.get(row) ?? 0) + 1);
      for (let j = 0; j < n; j++, k++) {
        const at = row * b.seqLen + b.segOffset[i]! + j;
        [ids[at], lab[at], pos[at], seg[at]] = [toks[k]!, sup[k] ? toks[k]! : X, j, count.get(row)!];
      }
    });
    return [ids, lab, pos, seg];
  }

  it('equals the token-by-token reference on random batches (gaps, empty segments, spans over several segments)', () => {
    let state = 12345;
    const rand = (n: number): number => (state = (state * 1103515245 + 12345) % 2147483648) % n;
    for (let trial = 0; trial < 200; trial++) {
      const B = 1 + rand(4);
      const L = 4 + rand(40);
      const [segRow, segOffset, segLength]: [number[], number[], number[]] = [[], [], []];
      for (let r = 0; r < B; r++) {
        for (let col = rand(3); col < L && rand(5) > 0;) {
          const n = rand(L - col + 1); // 0: an empty segment
          segRow.push(r);
          segOffset.push(col);
          segLength.push(n);
          col += n + rand(2);
        }
      }
      const N = segLength.reduce((a, x) => a + x, 0);
      const cuts = Array.from({ length: 2 * rand(5) }, () => rand(N + 1)).sort((x, y) => x - y);
      const S = segLength.length;
      const b = sample({
        batchSize: B,
        seqLen: L,
        tokens: le(Array.from({ length: N }, () => rand(1 << 30) - (1 << 29))),
        segRow,
        segOffset,
        segLength,
        lossSpans: cuts,
        segTask: Array<number>(S).fill(0),
        segTurns: Array<number>(S).fill(1),
        uuids: segLength.map((_, i) => `u${i}`),
        turnTask: Array<number>(S).fill(0),
      });
      const d = denseArrays(b);
      expect(
        [d.inputIds, d.labels, d.positionIds, d.segmentIds].map((a) => Array.from(a)),
        `trial ${trial}`,
      ).toEqual(reference(b));
    }
  });

  const broken: [string, Partial<WireBatch>][] = [
    ['token bytes not a multiple of 4', { tokens: Buffer.alloc(7) }],
    ['column lengths disagree', { segOffset: [0, 3] }],
    ['segment outside the rows', { segRow: [0, 0, 2] }],
    ['segment crossing its row', { segOffset: [0, 3, 3] }],
    ['overlapping segments', { segOffset: [0, 2, 0] }],
    ['lengths not summing to the tokens', { segLength: [3, 2, 3] }],
    ['odd loss spans', { lossSpans: [2, 3, 4, 5, 6, 7, 7] }],
    ['reversed loss span', { lossSpans: [2, 3, 4, 5, 6, 7, 9, 7] }],
    ['loss span beyond the tokens', { lossSpans: [2, 3, 4, 5, 6, 7, 7, 10] }],
    ['fewer loss spans than turns', { lossSpans: [2, 3, 4, 5, 7, 9] }],
    ['turns not matching uuids', { segTurns: [1, 1, 1] }],
  ];
  for (const [name, over] of broken) {
    it(`refuses a malformed batch with DATA_LOSS: ${name}`, () => {
      let err: unknown;
      try {
        new BatchDecoder(info).decode(sample(over));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FlanStreamError);
      expect((err as FlanStreamError).code).toBe(Status.DATA_LOSS);
    });
  }
});
