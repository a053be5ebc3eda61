import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { splitAudioRefs } from '../corpus/audio-refs.js';
import { frameWindow } from '../corpus/audio-window.js';
import { NpyFormatError } from '../corpus/npy.js';
import { countByReason, type QuarantineEntry } from '../corpus/quarantine.js';
import { parseRecord } from '../corpus/record-parse.js';
import { isDomain, taskPath, type FlanRecord } from '../corpus/record-schema.js';
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
import { encodeTokens, tokenCodecOf } from './token-pages.js';
import { makeVocabLayout } from '../tokenize/vocab-layout.js';
import type { ShardTools } from './shard-tools.js';

export interface ShardJob {
  /** Shard path relative to the corpus root. */
  readonly source: string;
  readonly indexDir: string;
  readonly options: IndexOptions;
}

/** A piece of a field: text still to tokenize, or a clip's finished tokens (`<|SOA|>` codes `<|EOA|>`). */
type Piece =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'audio'; readonly id: string; readonly tokens: Int32Array; readonly codebooks: number };

interface Accepted {
  readonly rec: FlanRecord;
  readonly line: number;
  readonly fields: readonly (readonly Piece[])[];
  readonly task: string;
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
  const npyDeps = new Map<string, readonly [string, number, number]>();
  const scpDeps = new Map<string, string>();
  const accepted: Accepted[] = [];
  /** Accepted uuids and their lines: a later record with one is quarantined naming the first. */
  const seen = new Map<string, number>();
  const { codebooks, frameRate } = options.codec;

  for (const { line, text, unterminated } of lines) {
    const bad = (reason: QuarantineEntry['reason'], detail: string): void => {
      quarantine.push({ file: source, line, reason, detail });
    };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      if (unterminated) bad('truncated_line', 'the last line ends without a newline and is not complete JSON');
      else bad('invalid_json', (err as Error).message);
      continue;
    }
    const parsed = parseRecord(json);
    if (!parsed.ok) {
      bad('schema', parsed.detail);
      continue;
    }
    const rec = parsed.rec;
    if (!isDomain(rec.domain)) {
      bad('unknown_domain', `domain "${rec.domain}" is not speech, music or audio`);
      continue;
    }
    const first = seen.get(rec.uuid);
    if (first !== undefined) {
      bad('duplicate_uuid', `uuid ${rec.uuid} already appears at ${source}:${first}`);
      continue;
    }
    let problem: { reason: QuarantineEntry['reason']; detail: string } | undefined;
    const fields: Piece[][] = [];
    for (const field of [rec.instruction, rec.input, rec.output]) {
      const pieces: Piece[] = [];
      for (const part of splitAudioRefs(field)) {
        if (part.kind === 'text') {
          pieces.push(part);
          continue;
        }
        const r = audio.resolve(rec.domain, part.id);
        if (!r.ok) {
          problem = r;
          break;
        }
        if (r.npy.codebooks !== codebooks) {
          problem = {
            reason: 'codebooks_mismatch',
            detail: `${r.file} has ${r.npy.codebooks} codebooks × ${r.npy.frames} frames, the corpus's codec has ${codebooks} (a [frames, codebooks] array saved transposed looks like this; set "codebooks" in audio_tokens/codec.json or --codebooks if the corpus really has ${r.npy.codebooks})`,
          };
          break;
        }
        const win = frameWindow(r.npy.frames, rec.audio_start, rec.audio_end, frameRate);
        if (!win.ok) {
          problem = { reason: 'audio_window', detail: `${r.file}: ${win.detail}` };
          break;
        }
        const tokens = clips.tokens(r.npy, win.from, win.to, options.codebookSize);
        if (tokens instanceof NpyFormatError) {
          problem = { reason: 'npy_malformed', detail: `${r.file}: ${tokens.message}` };
          break;
        }
        npyDeps.set(r.file, [r.file, r.size, r.mtimeMs]);
        scpDeps.set(r.scp, r.scpHash);
        pieces.push({ kind: 'audio', id: part.id, tokens, codebooks: r.npy.codebooks });
      }
      if (problem) break;
      fields.push(pieces);
    }
    if (problem) {
      bad(problem.reason, problem.detail);
      continue;
    }
    seen.set(rec.uuid, line);
    const task = taskPath(rec.domain, rec.task_type.major[0] ?? '', rec.task_type.minor[0] ?? '');
    accepted.push({ rec, line, fields, task });
  }

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
  // Strings are measured now and encoded into the section once at the end: a Buffer per string
  // (uuid, output, clip id: several per record) was a large share of the build's allocations.
  const strings: string[] = [];
  let stringBytes = 0;
  const addString = (s: string): [number, number] => {
    const n = Buffer.byteLength(s, 'utf8');
    strings.push(s);
    stringBytes += n;
    return [stringBytes - n, n];
  };
  // Instructions repeat across a task's records: their texts are stored once per shard.
  const texts = new Map<string, [number, number]>();
  const addText = (s: string): [number, number] => {
    let at = texts.get(s);
    if (!at) texts.set(s, (at = addString(s)));
    return at;
  };
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
        const [idOff, idLen] = addString(p.id);
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
    const [uOff, uLen] = addString(a.rec.uuid);
    const [oOff, oLen] = addString(a.rec.output);
    const [klo, khi] = firstInputKey ?? [0, 0];
    const textOf = (field: number): string => {
      let out: string | undefined;
      for (const p of a.fields[field] ?? [])
        if (p.kind === 'text') out = out === undefined ? p.text : `${out}\n${p.text}`;
      return out ?? '';
    };
    const [iOff, iLen] = addText(textOf(0));
    const [nOff, nLen] = addText(textOf(1));
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
    strings: utf8Section(strings, stringBytes),
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

/** The strings' UTF-8 bytes back to back, each encoded on its own (as Buffer.from would: a lone surrogate is U+FFFD whatever follows it). */
export function utf8Section(strings: readonly string[], bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const s of strings) at += out.write(s, at, 'utf8');
  if (at !== bytes) throw new Error(`strings section: wrote ${at} bytes of ${bytes}`);
  return out;
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
