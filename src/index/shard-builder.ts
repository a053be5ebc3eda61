import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { countByReason, type QuarantineEntry } from '../corpus/quarantine.js';
import type { FlanRecord } from '../corpus/record-schema.js';
import { readCorpusShard } from '../corpus/shard-lines.js';
import { checksum, digest } from '../util/hash.js';
import {
  COLUMN_WIDTH,
  FLAG_UNSEEN,
  INDEX_FORMAT_VERSION,
  ROW_WIDTH,
  SHARDS_DIR,
  SPAN_WIDTH,
  SPLIT_BIT,
  type IndexOptions,
  type ShardDeps,
  type ShardMeta,
  type ShardTask,
} from './format.js';
import { writeFileAtomic } from './manifest-io.js';
import { writeShardFile } from './shard-file.js';
import { acceptRecords } from './shard-records.js';
import { ShardStrings } from './shard-strings.js';
import { encodeTokens, tokenCodecOf } from './token-pages.js';
import { makeVocabLayout } from '../tokenize/vocab-layout.js';
import type { ShardTools } from './shard-tools.js';

export interface ShardJob {
  /** Shard path relative to the corpus root. */
  readonly source: string;
  readonly indexDir: string;
  readonly options: IndexOptions;
}

/** Validates, resolves and tokenizes one JSONL shard and writes its shard file atomically. */
export async function buildShard(job: ShardJob, tools: ShardTools): Promise<ShardMeta> {
  const { source, options } = job;
  const { tok, audio, encoder, clips } = tools;
  // Read through the resolver's corpus files: the same directory or s3:// prefix as the audio.
  const {
    lines,
    issues,
    bytes: jsonlBytes,
    sourceHash,
  } = await readCorpusShard(audio.files, source, options.maxLineBytes);
  // On S3, the shard's clips are fetched ahead while its records are resolved in order.
  audio.expect(lines.map((l) => l.text));
  const quarantine: QuarantineEntry[] = [...issues];
  const { accepted, npyDeps, scpDeps } = acceptRecords(source, lines, quarantine, tools, options);
  const { codebooks } = options.codec;

  // Tokenize every distinct text piece of the shard in one batch call (native, multi-threaded);
  // instructions and labels repeat across records (and shards: the cache), so each is encoded once.
  const textIndex = new Map<string, number>();
  for (const a of accepted)
    for (const f of a.fields)
      for (const p of f) if (p.kind === 'text' && !textIndex.has(p.text)) textIndex.set(p.text, textIndex.size);
  const encoded = await encoder.encodeBatch([...textIndex.keys()]);

  const taskIndex = new Map<string, number>();
  const tasks: {
    path: string;
    rec: FlanRecord;
    rows: number[][];
    text: number;
    audio: number;
    frames: number;
    unseen: boolean;
  }[] = [];
  const tokenChunks: Int32Array[] = [];
  const rows = new Int32Array(accepted.length * ROW_WIDTH);
  const columns = new Int32Array(accepted.length * COLUMN_WIDTH);
  /** Distinct source lists of the shard (their JSON → index into `sources`). */
  const sourceIds = new Map<string, number>();
  const sources: (readonly string[])[] = [];
  const spans: number[] = [];
  const strings = new ShardStrings();
  let tokens = 0;
  let maxCodebooks = 0;

  accepted.forEach((a, r) => {
    const row = r * ROW_WIDTH;
    const start = tokens;
    const fieldLens: number[] = [];
    let audioTokens = 0;
    let audioFrames = 0;
    let firstInputKey: readonly [number, number] | undefined;
    const spanStart = spans.length / SPAN_WIDTH;
    a.fields.forEach((parts, fieldNo) => {
      let len = 0;
      for (const p of parts) {
        if (p.kind === 'text') {
          const ids = encoded[textIndex.get(p.text) ?? -1] ?? new Int32Array(0);
          tokenChunks.push(ids);
          len += ids.length;
          tokens += ids.length;
          continue;
        }
        const n = p.tokens.length;
        maxCodebooks = Math.max(maxCodebooks, p.codebooks);
        const [idOff, idLen] = strings.add(p.id);
        // A clip's identity is its served tokens (see SPAN), digested once per build.
        const key = clips.key(p.tokens);
        spans.push(tokens - start, n, idOff, idLen, key[0], key[1]);
        if (fieldNo === 1 && firstInputKey === undefined) firstInputKey = key;
        tokenChunks.push(p.tokens);
        len += n;
        tokens += n;
        audioTokens += n;
        audioFrames += (n - 2) / p.codebooks;
      }
      fieldLens.push(len);
    });
    let t = taskIndex.get(a.task);
    if (t === undefined) {
      t = tasks.length;
      taskIndex.set(a.task, t);
      tasks.push({ path: a.task, rec: a.rec, rows: [[], [], []], text: 0, audio: 0, frames: 0, unseen: false });
    }
    const task = tasks[t]!;
    const total = tokens - start;
    task.text += total - audioTokens;
    task.audio += audioTokens;
    task.frames += audioFrames;
    task.unseen ||= a.rec.task_type.unseen;
    let splits = 0;
    for (const s of a.rec.split) splits |= SPLIT_BIT[s];
    (['train', 'dev', 'test'] as const).forEach((s, i) => {
      if (splits & SPLIT_BIT[s]) task.rows[i]!.push(r);
    });
    const sourceKey = JSON.stringify(a.rec.source);
    let sourceId = sourceIds.get(sourceKey);
    if (sourceId === undefined) {
      sourceIds.set(sourceKey, (sourceId = sources.length));
      sources.push(a.rec.source);
    }
    const flags = a.rec.task_type.unseen ? FLAG_UNSEEN : 0;
    const clipCount = spans.length / SPAN_WIDTH - spanStart;
    columns.set(
      [t, splits, flags, total - audioTokens, audioTokens, Math.round(audioFrames), clipCount, sourceId],
      r * COLUMN_WIDTH,
    );
    const [uOff, uLen] = strings.add(a.rec.uuid);
    const [oOff, oLen] = strings.add(a.rec.output);
    const [klo, khi] = firstInputKey ?? [0, 0];
    const textOf = (field: number): string => {
      let out: string | undefined;
      for (const p of a.fields[field] ?? [])
        if (p.kind === 'text') out = out === undefined ? p.text : `${out}\n${p.text}`;
      return out ?? '';
    };
    const [iOff, iLen] = strings.addText(textOf(0));
    const [nOff, nLen] = strings.addText(textOf(1));
    rows.set(
      [
        start,
        fieldLens[0] ?? 0,
        fieldLens[1] ?? 0,
        fieldLens[2] ?? 0,
        t,
        splits,
        audioTokens,
        spanStart,
        clipCount,
        uOff,
        uLen,
        a.line,
        klo,
        khi,
        flags,
        oOff,
        oLen,
        iOff,
        iLen,
        nOff,
        nLen,
      ],
      row,
    );
  });

  const lists: number[] = [];
  const shardTasks: ShardTask[] = tasks.map((t) => {
    const listOffsets = t.rows.map((rs) => {
      const off = lists.length;
      // A loop, not push(...rs): spreading a task's 100k+ rows would overflow the call stack.
      for (const r of rs) lists.push(r);
      return off;
    }) as unknown as [number, number, number];
    const [domain, major, minor] = [t.rec.domain, t.rec.task_type.major[0] ?? '', t.rec.task_type.minor[0] ?? ''];
    return {
      path: t.path,
      domain,
      major,
      minor,
      ug: t.rec.task_type['U/G'][0] ?? 'understanding',
      unseen: t.unseen,
      counts: [t.rows[0]!.length, t.rows[1]!.length, t.rows[2]!.length],
      listOffsets,
      textTokens: t.text,
      audioTokens: t.audio,
      audioFrames: t.frames,
    };
  });

  // The tokens back to back, then stored page by page in 2 or 4 bytes a token (token-pages.ts).
  const tokenInts = new Int32Array(tokens);
  let at = 0;
  for (const c of tokenChunks) {
    tokenInts.set(c, at);
    at += c.length;
  }
  const deps: ShardDeps = {
    npy: [...npyDeps.values()].sort((x, y) => (x[0] < y[0] ? -1 : 1)),
    scp: [...scpDeps.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1)),
  };
  const served = {
    tokens: encodeTokens(tokenInts, tokenCodecOf(makeVocabLayout(tok, codebooks, options.codebookSize))),
    rows: Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength),
    spans: Buffer.from(Int32Array.from(spans).buffer),
    strings: strings.section(),
    lists: Buffer.from(Int32Array.from(lists).buffer),
    columns: Buffer.from(columns.buffer, columns.byteOffset, columns.byteLength),
  };
  const depsBuf = Buffer.from(JSON.stringify(deps));
  const key = digest(
    String(INDEX_FORMAT_VERSION),
    source,
    sourceHash,
    tok.fingerprint,
    JSON.stringify(options),
    depsBuf,
  );
  const written = writeShardFile(job.indexDir, key, served, depsBuf);
  const quarantineFile = quarantine.length > 0 ? `${SHARDS_DIR}/${key}.quarantine.jsonl` : '';
  if (quarantineFile) writeFileAtomic(join(job.indexDir, quarantineFile), quarantineLines(quarantine));

  return {
    key,
    ...written,
    source,
    sourceHash,
    records: accepted.length,
    tokens,
    tasks: shardTasks,
    maxCodebooks,
    sources,
    quarantined: countByReason(quarantine),
    quarantineFile,
    firstProblem: quarantine[0]?.detail ?? '',
    jsonlBytes,
  };
}

/** Quarantine entries as JSON lines, in blocks: one string of a million lines would exceed V8's string limit. */
function* quarantineLines(entries: readonly QuarantineEntry[]): Generator<Buffer> {
  for (let i = 0; i < entries.length; i += 4096)
    yield Buffer.from(
      entries
        .slice(i, i + 4096)
        .map((q) => JSON.stringify(q) + '\n')
        .join(''),
    );
}

/** The deps section of a built shard file; undefined when it is missing or damaged (then rebuild). */
export function readShardDeps(indexDir: string, meta: ShardMeta): ShardDeps | undefined {
  const [off, len] = meta.sections.deps;
  const buf = Buffer.alloc(len);
  const fd = openSync(join(indexDir, meta.file), 'r');
  try {
    if (readSync(fd, buf, 0, len, off) !== len || checksum(buf) !== meta.checksums.deps) return undefined;
  } finally {
    closeSync(fd);
  }
  return JSON.parse(buf.toString('utf8')) as ShardDeps;
}
