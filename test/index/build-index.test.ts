import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseNpy } from '../../src/corpus/npy.js';
import { encodeNpy } from '../../src/sample/npy-writer.js';
import { buildIndex } from '../../src/index/build-index.js';
import { PAGE_TOKENS, ROW, SPAN, SPAN_WIDTH } from '../../src/index/format.js';
import { IndexReader, type SplitIndex } from '../../src/index/index-reader.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { TextTokenizer } from '../../src/tokenize/text-tokenizer.js';
import { createHash } from 'node:crypto';

interface Expected {
  uuid: string;
  line: number;
  task: string;
  splits: string[];
  unseen: boolean;
  output: string;
  fieldTokens: number[][];
  spans: { rel: number; len: number; id: string; key: [number, number] }[];
  /** Content key of the input's first clip (sha1 of its tokens, first 8 bytes). */
  firstInputKey: [number, number] | undefined;
  /** Instruction and input text pieces, joined by newlines. */
  texts: [string, string];
}

/**
 * Re-derives every record's tokens straight from the corpus files: own JSONL and scp parsing,
 * the real tokenizer on each text piece, and the frame-major codec mapping of docs/corpus.md.
 */
async function expectedFromCorpus(
  corpus: string,
  tok: TextTokenizer,
  codebookSize = 1024,
): Promise<Map<string, Expected[]>> {
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
    );
  const scp = new Map<string, string>();
  for (const f of walk(join(corpus, 'scp_files'))) {
    for (const l of readFileSync(f, 'utf8').split('\n')) {
      const [id, path] = l.trim().split(/\s+/);
      // The three path forms of docs/corpus.md, the absolute ones under the sample's fake root.
      if (id && path) scp.set(id, path.replace(`${SAMPLE_AUDIO_ROOT}/`, '').replace(/^audio_files\//, ''));
    }
  }
  const codec = join(corpus, 'audio_tokens', 'codec.json');
  const rate = existsSync(codec) ? (JSON.parse(readFileSync(codec, 'utf8')) as { frame_rate: number }).frame_rate : 0;
  const audio = (id: string, start: number | undefined, end: number | undefined): number[] => {
    const path = scp.get(id);
    if (!path) throw new Error(`no scp entry for ${id}`);
    const npy = parseNpy(readFileSync(join(corpus, 'audio_tokens', path.replace(/\.\w+$/, '.npy'))));
    const out = [tok.special.soa];
    // The sample's windows fall on frame boundaries.
    const [from, to] = [Math.round((start ?? 0) * rate), end === undefined ? npy.frames : Math.round(end * rate)];
    for (let f = from; f < to; f++)
      for (let q = 0; q < npy.codebooks; q++)
        out.push(tok.vocabSize + q * codebookSize + npy.codes[q * npy.frames + f]!);
    out.push(tok.special.eoa);
    return out;
  };
  const list = (v: string | string[]): string[] => (typeof v === 'string' ? [v] : v);
  type Raw = { e: Expected; fields: string[][]; window: [number | undefined, number | undefined] };
  const raws: [string, Raw[]][] = [];
  const texts: string[] = [];
  for (const file of walk(join(corpus, 'metadata')).filter((f) => /\.jsonl(\.gz)?$/.test(f))) {
    const data = readFileSync(file);
    const recs: Raw[] = [];
    (file.endsWith('.gz') ? gunzipSync(data) : data)
      .toString('utf8')
      .split('\n')
      .forEach((l, n) => {
        if (l.trim() === '') return;
        type L = string | string[];
        const r = JSON.parse(l) as {
          instruction: string;
          input: string;
          output: string;
          uuid: string;
          split: L;
          domain: string;
          task_type: { major: L; minor: L; unseen?: boolean };
          audio_start?: number;
          audio_end?: number;
        };
        const task = `${r.domain}/${list(r.task_type.major)[0]}/${list(r.task_type.minor)[0]}`;
        const e: Expected = {
          uuid: r.uuid,
          line: n + 1,
          task,
          splits: list(r.split),
          unseen: r.task_type.unseen ?? false,
          output: r.output,
          fieldTokens: [],
          spans: [],
          firstInputKey: undefined,
          texts: ['', ''],
        };
        // Odd entries of the split are audio ids, even ones text (possibly empty).
        const fields = [r.instruction, r.input, r.output].map((f) => f.split(/<\|SOA\|>(.*?)<\|EOA\|>/s));
        e.texts = [0, 1].map((k) => fields[k]!.filter((p, j) => j % 2 === 0 && p !== '').join('\n')) as [
          string,
          string,
        ];
        for (const f of fields) f.forEach((p, k) => k % 2 === 0 && p !== '' && texts.push(p));
        recs.push({ e, fields, window: [r.audio_start, r.audio_end] });
      });
    raws.push([relative(corpus, file), recs]);
  }
  const encoded = await tok.encodeBatch(texts);
  let cursor = 0;
  const out = new Map<string, Expected[]>();
  for (const [file, recs] of raws) {
    out.set(
      file,
      recs.map(({ e, fields, window }) => {
        let pos = 0;
        fields.forEach((parts, fieldNo) => {
          const toks: number[] = [];
          parts.forEach((p, k) => {
            if (k % 2 === 0) {
              if (p !== '') toks.push(...encoded[cursor++]!);
              return;
            }
            const id = p.trim();
            const a = audio(id, ...window);
            const d = createHash('sha1')
              .update(new Uint8Array(Int32Array.from(a).buffer))
              .digest();
            const key: [number, number] = [d.readInt32LE(0), d.readInt32LE(4)];
            if (fieldNo === 1) e.firstInputKey ??= key;
            e.spans.push({ rel: pos + toks.length, len: a.length, id, key });
            toks.push(...a);
          });
          pos += toks.length;
          e.fieldTokens.push(toks);
        });
        return e;
      }),
    );
  }
  return out;
}

describe('index round trip on the sample corpus', () => {
  let reader: IndexReader;
  let tok: TextTokenizer;
  const corpus = inject('sampleCorpus');
  beforeAll(() => {
    reader = IndexReader.open(inject('sampleIndex'));
    tok = TextTokenizer.load('qwen3');
  });
  afterAll(() => reader.close());

  it('indexes every record of the clean corpus, quarantining nothing', () => {
    expect(reader.manifest.quarantined).toBe(0);
    expect(readFileSync(join(inject('sampleIndex'), 'quarantine.jsonl'), 'utf8')).toBe('');
    expect(reader.manifest.tasks).toHaveLength(80);
    expect(reader.manifest.records).toBeGreaterThanOrEqual(3000);
    expect(reader.manifest.vocab).toMatchObject({
      textVocabSize: tok.vocabSize,
      audioOffset: tok.vocabSize,
      codebookSize: 1024,
      codebooks: 8,
    });
  });

  it('reads back exactly the tokens, uuids, splits, tasks and spans of every record', async () => {
    const expected = await expectedFromCorpus(corpus, tok);
    const m = reader.manifest;
    let checked = 0;
    m.shards.forEach((shard, i) => {
      const recs = expected.get(shard.source);
      expect(recs, shard.source).toBeDefined();
      expect(shard.records).toBe(recs!.length);
      recs!.forEach((e, row) => {
        const fields = reader.row(i, row);
        const at = (f: number): number => fields[f]!;
        expect(reader.uuid(i, row)).toBe(e.uuid);
        expect(at(ROW.LINE)).toBe(e.line);
        expect(m.tasks[reader.taskOf(i, row)]?.path).toBe(e.task);
        expect(shard.tasks[at(ROW.TASK)]?.path).toBe(e.task);
        expect(['train', 'dev', 'test'].filter((_, b) => at(ROW.SPLITS) & (1 << b))).toEqual(e.splits);
        expect(at(ROW.FLAGS) & 1).toBe(e.unseen ? 1 : 0);
        expect(reader.string(i, at(ROW.OUT_TEXT_OFF), at(ROW.OUT_TEXT_LEN))).toBe(e.output);
        expect([at(ROW.INSTR_LEN), at(ROW.INPUT_LEN), at(ROW.OUTPUT_LEN)]).toEqual(e.fieldTokens.map((f) => f.length));
        const all = e.fieldTokens.flat();
        const got = new Int32Array(all.length);
        reader.readTokens(i, at(ROW.TOK_START), all.length, got, 0);
        expect(Array.from(got)).toEqual(all);
        expect(at(ROW.SPAN_COUNT)).toBe(e.spans.length);
        const spans = reader.spans(i, at(ROW.SPAN_START), at(ROW.SPAN_COUNT));
        e.spans.forEach((s, k) => {
          const so = k * SPAN_WIDTH;
          expect([spans[so + SPAN.REL_START], spans[so + SPAN.LENGTH]]).toEqual([s.rel, s.len]);
          expect(reader.string(i, spans[so + SPAN.ID_OFF]!, spans[so + SPAN.ID_LEN]!)).toBe(s.id);
          expect([spans[so + SPAN.KEY_LO], spans[so + SPAN.KEY_HI]]).toEqual(s.key);
        });
        expect(reader.string(i, at(ROW.INSTR_TEXT_OFF), at(ROW.INSTR_TEXT_LEN))).toBe(e.texts[0]);
        expect(reader.string(i, at(ROW.INPUT_TEXT_OFF), at(ROW.INPUT_TEXT_LEN))).toBe(e.texts[1]);
        expect(at(ROW.AUDIO_TOKENS)).toBe(e.spans.reduce((n, s) => n + s.len, 0));
        expect([at(ROW.AUDIO_KEY_LO), at(ROW.AUDIO_KEY_HI)]).toEqual(e.firstInputKey ?? [0, 0]);
        checked++;
      });
      shard.tasks.forEach((t, local) => {
        ([0, 1, 2] as SplitIndex[]).forEach((split) => {
          const want = recs!.flatMap((e, row) =>
            e.task === t.path && e.splits.includes(['train', 'dev', 'test'][split]!) ? [row] : [],
          );
          expect(Array.from(reader.list(i, local, split))).toEqual(want);
        });
      });
    });
    expect(checked).toBe(m.records);
  });

  it('sums per-task counts and tokens in the task table', () => {
    for (const t of reader.manifest.tasks) {
      const runs = t.runs.map((r) => r.reduce((n, [, , c]) => n + c, 0));
      expect(runs).toEqual([...t.counts]);
      expect(t.path).toBe(`${t.domain}/${t.major}/${t.minor}`);
      expect(t.textTokens).toBeGreaterThan(0);
    }
  });
});

describe('a shard larger than one token block', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flanstream-bigshard-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads tokens back across block boundaries', async () => {
    const corpus = join(dir, 'corpus');
    const put = (rel: string, data: string | Buffer): void => {
      mkdirSync(dirname(join(corpus, rel)), { recursive: true });
      writeFileSync(join(corpus, rel), data);
    };
    const frames = 12_000;
    const codes = Array.from({ length: 8 * frames }, (_, i) => (i * 31) % 1024);
    put('audio_tokens/speech/01_Big/long.npy', encodeNpy(codes, [8, frames], '<i2'));
    put('scp_files/speech/01_Big.scp', '01_Big_long speech/01_Big/long.wav\n');
    const rec = (n: number): string =>
      JSON.stringify({
        instruction: `Transcribe clip ${n}.`,
        input: '<|SOA|>01_Big_long<|EOA|>',
        output: `words ${n}`,
        uuid: `big-${n}`,
        split: ['train'],
        task_type: { major: ['Speech Recognition'], minor: ['ASR'], 'U/G': ['understanding'], unseen: false },
        domain: 'speech',
        source: ['studio'],
        other: null,
      });
    put('metadata/speech/understanding/train_dev/01_Big/jsonl/asr.jsonl', `${[0, 1, 2, 3].map(rec).join('\n')}\n`);
    const out = join(dir, 'index');
    await buildIndex({ corpus, out, workers: 1 });
    const r = IndexReader.open(out);
    const shard = r.shard(0);
    expect(shard.tokens).toBeGreaterThan(PAGE_TOKENS);
    const expected = await expectedFromCorpus(corpus, TextTokenizer.load('qwen3'));
    const want = expected
      .get('metadata/speech/understanding/train_dev/01_Big/jsonl/asr.jsonl')!
      .flatMap((e) => e.fieldTokens.flat());
    const all = new Int32Array(shard.tokens);
    r.readTokens(0, 0, shard.tokens, all, 0);
    expect(Array.from(all)).toEqual(want);
    // An unaligned read straddling the first boundary.
    const mid = new Int32Array(1000);
    r.readTokens(0, PAGE_TOKENS - 500, 1000, mid, 0);
    expect(Array.from(mid)).toEqual(want.slice(PAGE_TOKENS - 500, PAGE_TOKENS + 500));
    r.close();
  });
});
