/**
 * Writes a synthetic index in the real on-disk format (src/index/format.ts) directly: no JSONL, no
 * tokenizer run, no audio files. Used by scale-bench.ts to measure open time and memory at
 * Audio-FLAN scale (10⁷–10⁸ records), which the sample corpus cannot reach.
 *
 * Layout: the 80 Audio-FLAN tasks of src/sample/task-catalog.ts (so the configured held-out sets
 * and mixtures resolve), records split over them in proportion to the paper-scale instance counts
 * (at least MIN_PER_TASK each), in contiguous ranges like Audio-FLAN's per-task JSONL files, cut
 * into shards of `shardRecords` records (default 100k): a task spans a few shards, a shard holds
 * one task or a few small ones. Every record has the same RECORD_TOKENS-token sequence (instruction ‖
 * input = one audio clip `<|SOA|>` codes `<|EOA|>` ‖ output), about the sample corpus's median
 * length, so a batch holds a realistic number of records. To keep disk at ~290 bytes per record,
 * SHARE records point at each token range (record r of a shard starts at (r mod ranges) ×
 * RECORD_TOKENS): consecutive records still read consecutive, distinct token pages, as in a real
 * shard. Token sections (and their page digests) depend only on the record count, so each distinct
 * one is built once. Splits: record % 20 = 0 is dev, 1 is test, the rest train. Rows carry no audio
 * grouping key (AUDIO_KEY = 0), so the audio
 * groups file is empty. tokenizer.json is copied in as the indexer does. The manifest is made by the indexer's own compileManifest/writeManifest.
 *
 *   npx tsx test/bench/synthetic-index.ts <dir> --records 1000000 [--shard-records 100000]
 *
 * Cost: one shard's tables in memory at a time (10⁷ records peaked at 420 MB RSS), about 4 CPU
 * seconds per 10⁶ records (10⁷: 43 s of CPU, 2.8 GB on disk); the rest of the wall time is the
 * disk. Tokens are stored as the indexer stores them (token-pages.ts), so the index serves what
 * a real build of such records would.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AUDIO_FLAN_TASKS } from '../../src/sample/task-catalog.js';
import { compileManifest } from '../../src/index/compile-manifest.js';
import {
  FLAG_UNSEEN,
  PAGE_TOKENS,
  COLUMN_WIDTH,
  ROW,
  ROW_WIDTH,
  SHARDS_DIR,
  SPAN,
  SPAN_WIDTH,
  SPLIT_BIT,
  TOKENIZER_FILE,
  type IndexOptions,
  type ShardMeta,
  type ShardTask,
} from '../../src/index/format.js';
import { writeFileAtomic, writeManifest } from '../../src/index/manifest-io.js';
import { writeShardFile } from '../../src/index/shard-file.js';
import { encodeTokens, tokenCodecOf, type EncodedTokens } from '../../src/index/token-pages.js';
import { templatePieces } from '../../src/tokenize/chat-template.js';
import { TextTokenizer, tokenizerFile } from '../../src/tokenize/text-tokenizer.js';
import { makeVocabLayout } from '../../src/tokenize/vocab-layout.js';
import { digest } from '../../src/util/hash.js';

export const RECORD_TOKENS = 1024;
/** Records per token range (the tokens section holds ceil(records / SHARE) ranges). */
export const SHARE = 16;
const INSTR = 16;
const CODEBOOKS = 8;
const FRAMES = 120;
const CLIP = CODEBOOKS * FRAMES + 2; // <|SOA|> codes <|EOA|>
const OUTPUT = RECORD_TOKENS - INSTR - CLIP;
const UUID_W = 24;
const CLIP_W = 20;
const OUT_TEXT = 'synthetic';
const MIN_PER_TASK = 40;
const STRING_STRIDE = CLIP_W + UUID_W + OUT_TEXT.length;

export interface SyntheticOptions {
  readonly records: number;
  readonly shardRecords?: number;
  readonly tokenizer?: string;
}

function splitsOf(row: number): number {
  const m = row % 20;
  return m === 0 ? SPLIT_BIT.dev : m === 1 ? SPLIT_BIT.test : SPLIT_BIT.train;
}

/** Writes the index into `dir` (replacing it); returns the number of shards. */
export async function writeSyntheticIndex(dir: string, opts: SyntheticOptions): Promise<number> {
  const total = opts.records;
  const catalog = AUDIO_FLAN_TASKS;
  const per = opts.shardRecords ?? 100_000;
  if (PAGE_TOKENS % RECORD_TOKENS !== 0) throw new Error('RECORD_TOKENS must divide PAGE_TOKENS');
  const tok = TextTokenizer.load(opts.tokenizer ?? 'qwen3');
  const options: IndexOptions = {
    tokenizer: tok.name,
    codebookSize: 1024,
    maxLineBytes: 1 << 20,
    codec: { name: 'synthetic', frameRate: 50, codebooks: CODEBOOKS },
    audioRoots: [],
  };
  const vocab = makeVocabLayout(tok, CODEBOOKS, options.codebookSize, options.codec);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, SHARDS_DIR), { recursive: true });
  // As `flanstream index` does: the server loads the index's own copy of the tokenizer.
  writeFileAtomic(join(dir, TOKENIZER_FILE), readFileSync(tokenizerFile(options.tokenizer)));

  // One record's tokens: text ids for instruction and output, a clip of valid audio ids.
  const pattern = new Int32Array(RECORD_TOKENS);
  for (let i = 0; i < INSTR; i++) pattern[i] = 1000 + i;
  pattern[INSTR] = vocab.special.soa;
  for (let f = 0; f < FRAMES; f++)
    for (let q = 0; q < CODEBOOKS; q++)
      pattern[INSTR + 1 + f * CODEBOOKS + q] =
        vocab.audioOffset + q * vocab.codebookSize + ((f * 37 + q) % vocab.codebookSize);
  pattern[INSTR + CLIP - 1] = vocab.special.eoa;
  for (let i = 0; i < OUTPUT; i++) pattern[INSTR + CLIP + i] = 2000 + i;

  // Token sections depend only on the record count: build (and digest) each distinct one once.
  const tokenCache = new Map<number, EncodedTokens>();
  const codec = tokenCodecOf(vocab);
  const tokensFor = (ranges: number): EncodedTokens => {
    let t = tokenCache.get(ranges);
    if (!t) {
      const ints = new Int32Array(ranges * RECORD_TOKENS);
      for (let r = 0; r < ranges; r++) ints.set(pattern, r * RECORD_TOKENS);
      t = encodeTokens(ints, codec);
      tokenCache.set(ranges, t);
    }
    return t;
  };

  // Task t holds global records [ends[t - 1], ends[t]).
  const weight = catalog.reduce((n, t) => n + t.instances, 0);
  const ends: number[] = [];
  let cum = 0;
  catalog.forEach((t, i) => {
    cum += t.instances;
    const prev = ends[i - 1] ?? 0;
    ends.push(
      i === catalog.length - 1
        ? total
        : Math.min(
            total - (catalog.length - 1 - i) * MIN_PER_TASK,
            Math.max(prev + MIN_PER_TASK, Math.round((total * cum) / weight)),
          ),
    );
  });
  if (total < catalog.length * MIN_PER_TASK) throw new Error(`need at least ${catalog.length * MIN_PER_TASK} records`);
  let cur = 0;
  const taskOf = (g: number): number => {
    while (g >= (ends[cur] ?? total)) cur++;
    return cur;
  };
  const shards: ShardMeta[] = [];
  const nShards = Math.ceil(total / per);
  for (let s = 0; s < nShards; s++) {
    const first = s * per;
    const n = Math.min(per, total - first);
    const ranges = Math.ceil(n / SHARE);
    const tokens = tokensFor(ranges);
    const rows = new Int32Array(n * ROW_WIDTH);
    const columns = new Int32Array(n * COLUMN_WIDTH);
    const spans = new Int32Array(n * SPAN_WIDTH);
    const strings = Buffer.alloc(n * STRING_STRIDE);
    const local = new Map<number, number>();
    const taskRows: { id: number; rows: number[][] }[] = [];
    for (let r = 0; r < n; r++) {
      const g = first + r;
      const t = taskOf(g);
      let lt = local.get(t);
      if (lt === undefined) {
        lt = taskRows.length;
        local.set(t, lt);
        taskRows.push({ id: t, rows: [[], [], []] });
      }
      const splits = splitsOf(g);
      const tr = taskRows[lt]!;
      if (splits & SPLIT_BIT.train) tr.rows[0]!.push(r);
      if (splits & SPLIT_BIT.dev) tr.rows[1]!.push(r);
      if (splits & SPLIT_BIT.test) tr.rows[2]!.push(r);
      const so = r * STRING_STRIDE;
      strings.write(`clip-${String(g).padStart(CLIP_W - 5, '0')}`, so, 'latin1');
      strings.write(`syn-${String(g).padStart(UUID_W - 4, '0')}`, so + CLIP_W, 'latin1');
      strings.write(OUT_TEXT, so + CLIP_W + UUID_W, 'latin1');
      const sp = r * SPAN_WIDTH;
      spans[sp + SPAN.REL_START] = INSTR;
      spans[sp + SPAN.LENGTH] = CLIP;
      spans[sp + SPAN.ID_OFF] = so;
      spans[sp + SPAN.ID_LEN] = CLIP_W;
      // Every synthetic clip is distinct content (instruction and input texts stay empty).
      spans[sp + SPAN.KEY_LO] = g + 1;
      spans[sp + SPAN.KEY_HI] = 0x5eed;
      const o = r * ROW_WIDTH;
      rows[o + ROW.TOK_START] = (r % ranges) * RECORD_TOKENS;
      rows[o + ROW.INSTR_LEN] = INSTR;
      rows[o + ROW.INPUT_LEN] = CLIP;
      rows[o + ROW.OUTPUT_LEN] = OUTPUT;
      rows[o + ROW.TASK] = lt;
      rows[o + ROW.SPLITS] = splits;
      rows[o + ROW.AUDIO_TOKENS] = CLIP;
      rows[o + ROW.SPAN_START] = r;
      rows[o + ROW.SPAN_COUNT] = 1;
      rows[o + ROW.UUID_OFF] = so + CLIP_W;
      rows[o + ROW.UUID_LEN] = UUID_W;
      rows[o + ROW.LINE] = r + 1;
      rows[o + ROW.AUDIO_KEY_LO] = 0;
      rows[o + ROW.AUDIO_KEY_HI] = 0;
      rows[o + ROW.FLAGS] = t % 10 === 9 ? FLAG_UNSEEN : 0;
      rows[o + ROW.OUT_TEXT_OFF] = so + CLIP_W + UUID_W;
      rows[o + ROW.OUT_TEXT_LEN] = OUT_TEXT.length;
      columns.set([lt, splits, rows[o + ROW.FLAGS]!, RECORD_TOKENS - CLIP, CLIP, FRAMES, 1, 0], r * COLUMN_WIDTH);
    }
    const lists: number[] = [];
    const shardTasks: ShardTask[] = taskRows.map(({ id, rows: rs }) => {
      const listOffsets = rs.map((l) => {
        const off = lists.length;
        for (const r of l) lists.push(r);
        return off;
      }) as unknown as [number, number, number];
      const { domain, major, minor, ug } = catalog[id]!;
      const count = rs[0]!.length + rs[1]!.length + rs[2]!.length;
      return {
        path: `${domain}/${major}/${minor}`,
        domain,
        major,
        minor,
        ug,
        unseen: id % 10 === 9,
        counts: [rs[0]!.length, rs[1]!.length, rs[2]!.length],
        listOffsets,
        textTokens: count * (RECORD_TOKENS - CLIP),
        audioTokens: count * CLIP,
        audioFrames: count * FRAMES,
      };
    });
    const served = {
      tokens,
      rows: Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength),
      spans: Buffer.from(spans.buffer, spans.byteOffset, spans.byteLength),
      strings,
      lists: Buffer.from(Int32Array.from(lists).buffer),
      columns: Buffer.from(columns.buffer, columns.byteOffset, columns.byteLength),
    };
    const source = `synthetic/shard-${String(s).padStart(5, '0')}.jsonl`;
    const key = digest('synthetic', String(total), String(per), source);
    const deps = Buffer.from(JSON.stringify({ npy: [], scp: [] }));
    const written = writeShardFile(dir, key, served, deps);
    shards.push({
      key,
      ...written,
      source,
      sourceHash: digest(source),
      records: n,
      tokens: ranges * RECORD_TOKENS,
      tasks: shardTasks,
      maxCodebooks: CODEBOOKS,
      sources: [['synthetic']],
      quarantined: {},
      quarantineFile: '',
      firstProblem: '',
      jsonlBytes: 0,
    });
  }
  writeManifest(dir, compileManifest(dir, shards, vocab, options, await templatePieces(tok)));
  return nShards;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = process.argv[2];
  const num = (name: string, fallback: number): number => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : fallback;
  };
  if (!dir) throw new Error('usage: synthetic-index.ts <dir> --records N [--shard-records 100000]');
  const t0 = performance.now();
  const shards = await writeSyntheticIndex(dir, {
    records: num('records', 1_000_000),
    shardRecords: num('shard-records', 100_000),
  });
  console.log(`synthetic index: ${shards} shards in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${dir}`);
}
