import type { QuarantineEntry } from '../corpus/quarantine.js';
import type { AudioGroupsMeta } from './audio-groups.js';
import type { VocabLayout } from '../tokenize/vocab-layout.js';

/**
 * The compiled index. `manifest.msgpack` (written last, atomically) describes every shard file;
 * a shard file `shards/<key>.bin` holds little-endian sections:
 *   tokens  int32, every record's instruction ‖ input ‖ output tokens, back to back
 *   rows    int32 [records × ROW_WIDTH], one row per kept record (fields in ROW)
 *   spans   int32 [spans × SPAN_WIDTH], audio spans of all records (fields in SPAN)
 *   strings utf-8 blob: uuids, audio ids, output texts
 *   lists   int32, per local task and split, the rows of that task holding that split
 *   deps    utf-8 JSON ShardDeps: the corpus files the shard was built from, read only by the
 *           indexer (kept out of the manifest, which must stay O(shards) to open)
 * and `audio-groups.bin` lists the records that share their first input clip (multi-turn).
 * Every section and every BLOCK_TOKENS block of tokens has a checksum in the manifest, so a
 * damaged file is detected when read and never served as wrong tokens.
 */
export const INDEX_FORMAT_VERSION = 3;
export const MANIFEST_FILE = 'manifest.msgpack';
export const QUARANTINE_FILE = 'quarantine.jsonl';
/** A copy of the tokenizer.json the index was built with. */
export const TOKENIZER_FILE = 'tokenizer.json';
export const SHARDS_DIR = 'shards';
export const BLOCK_TOKENS = 1 << 18;

export const ROW = {
  TOK_START: 0,
  INSTR_LEN: 1,
  INPUT_LEN: 2,
  OUTPUT_LEN: 3,
  TASK: 4,
  SPLITS: 5,
  AUDIO_TOKENS: 6,
  SPAN_START: 7,
  SPAN_COUNT: 8,
  UUID_OFF: 9,
  UUID_LEN: 10,
  LINE: 11,
  AUDIO_KEY_LO: 12,
  AUDIO_KEY_HI: 13,
  FLAGS: 14,
  OUT_TEXT_OFF: 15,
  OUT_TEXT_LEN: 16,
} as const;
export const ROW_WIDTH = 17;

/** An audio span: `<|SOA|>` codes `<|EOA|>`, positioned relative to its record's first token. */
export const SPAN = { REL_START: 0, LENGTH: 1, ID_OFF: 2, ID_LEN: 3 } as const;
export const SPAN_WIDTH = 4;

export const SPLIT_BIT = { train: 1, dev: 2, test: 4 } as const;
export const SPLIT_NAMES = ['train', 'dev', 'test'] as const;
export const FLAG_UNSEEN = 1;

export type Section = readonly [offset: number, length: number];

export interface ShardTask {
  readonly path: string;
  readonly domain: string;
  readonly major: string;
  readonly minor: string;
  readonly ug: string;
  readonly unseen: boolean;
  /** Records holding each split (train, dev, test). */
  readonly counts: readonly [number, number, number];
  /** Offset (in int32 entries) of each split's row list inside the lists section. */
  readonly listOffsets: readonly [number, number, number];
  readonly textTokens: number;
  readonly audioTokens: number;
}

/** Audio files a shard used, to decide whether the incremental index may reuse it. */
export interface ShardDeps {
  readonly npy: readonly (readonly [file: string, size: number, mtimeMs: number])[];
  readonly scp: readonly (readonly [file: string, digest: string])[];
}

export interface ShardMeta {
  readonly key: string;
  readonly file: string;
  readonly bytes: number;
  readonly source: string;
  readonly sourceHash: string;
  readonly records: number;
  readonly tokens: number;
  readonly tasks: readonly ShardTask[];
  readonly sections: { readonly tokens: Section; readonly rows: Section; readonly spans: Section; readonly strings: Section; readonly lists: Section; readonly deps: Section };
  readonly checksums: { readonly rows: string; readonly spans: string; readonly strings: string; readonly lists: string; readonly deps: string; readonly blocks: readonly string[] };
  readonly maxCodebooks: number;
  readonly quarantine: readonly QuarantineEntry[];
  readonly jsonlBytes: number;
}

export interface TaskEntry {
  readonly id: number;
  readonly path: string;
  readonly domain: string;
  readonly major: string;
  readonly minor: string;
  readonly ug: string;
  readonly unseen: boolean;
  readonly counts: readonly [number, number, number];
  readonly textTokens: number;
  readonly audioTokens: number;
  /** Per split: [shard index, local task index, count] runs, in shard order. */
  readonly runs: readonly (readonly (readonly [shard: number, local: number, count: number])[])[];
  /** Example-length percentiles p50, p90, p99, max. */
  readonly lengthPercentiles: readonly [number, number, number, number];
  /** Shortest train record (instruction + input + output tokens); Infinity without train records. */
  readonly minLength: number;
  /** Shortest train instruction + output + input up to its first clip: what truncation never cuts. */
  readonly minCoreLength: number;
}

export interface Manifest {
  readonly formatVersion: number;
  readonly fingerprint: string;
  readonly options: IndexOptions;
  readonly vocab: VocabLayout;
  readonly tasks: readonly TaskEntry[];
  readonly shards: readonly ShardMeta[];
  readonly records: number;
  readonly quarantined: number;
  readonly quarantineByReason: Readonly<Record<string, number>>;
  readonly audioGroups: AudioGroupsMeta;
}

export interface IndexOptions {
  readonly tokenizer: string;
  readonly codebookSize: number;
  readonly maxLineBytes: number;
}
