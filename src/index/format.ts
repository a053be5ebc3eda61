import type { QuarantineReason } from '../corpus/quarantine.js';
import type { TemplatePieces } from '../tokenize/chat-template.js';
import type { VocabLayout } from '../tokenize/vocab-layout.js';

/**
 * The compiled index. `manifest.msgpack` (written last, atomically) describes every shard file;
 * a shard file `shards/<key>.bin` holds little-endian sections:
 *   tokens  every record's instruction ‖ input ‖ output tokens, back to back, in pages of
 *           PAGE_TOKENS tokens each stored in 2 or 4 bytes a token (token-pages.ts)
 *   rows    int32 [records × ROW_WIDTH], one row per kept record (fields in ROW)
 *   spans   int32 [spans × SPAN_WIDTH], audio spans of all records (fields in SPAN)
 *   strings utf-8 blob: uuids, audio ids, output texts
 *   lists   int32, per local task and split, the rows of that task holding that split
 *   columns int32 [records × COLUMN_WIDTH], per record what a stream filter reads (fields in
 *           COLUMN), so filtering reads 32 bytes a record and decodes nothing
 *   pages   the page table: a PAGE_DIGEST_BYTES digest of every page of the six sections above
 *           (see shard-pages.ts), then the stored byte length of every token page (uint32)
 *   deps    utf-8 JSON ShardDeps: the corpus files the shard was built from, read only by the
 *           indexer (kept out of the manifest, which must stay O(shards) to open)
 * and `audio-groups.bin` lists the records that share their first input clip (multi-turn);
 * `duplicates.<checksum>.bin` lists the row-list entries of records excluded because an earlier
 * shard has their uuid (format 8; see exclusions.ts).
 * The served sections are read and verified page by page (PAGE_BYTES), so touching one record
 * costs a few KB, not its shard's whole tables. Page digests live in the shard file, not in the
 * manifest: at 10⁸ records there are millions of pages, and the manifest must stay O(shards).
 * The manifest holds the checksums of the page table and of deps, so a damaged file is detected
 * when read and never served as wrong tokens.
 */
export const INDEX_FORMAT_VERSION = 10;
/**
 * The one older format still served: format 9 lacks only the columns section, so it serves every
 * stream but a filtered one (a filter on it is refused, asking for a rebuild). `npm start` and the
 * indexer treat it as stale and rebuild it.
 */
export const COLUMNLESS_FORMAT_VERSION = 9;
/**
 * The version of what an index serves (tokens, tables, their meaning), as opposed to how its
 * files store it: the fingerprint covers this one, so an index rebuilt in a new storage format
 * from the same corpus keeps its fingerprint, and resume tokens made on the old one resume on it.
 * Format 9 changed only the storage of tokens (format 8 stored them as int32); format 10 added the
 * columns section, derived from what the other sections hold, and left out of the content checksum.
 */
export const CONTENT_VERSION = 8;
export const MANIFEST_FILE = 'manifest.msgpack';
export const QUARANTINE_FILE = 'quarantine.jsonl';
/** A copy of the tokenizer.json the index was built with. */
export const TOKENIZER_FILE = 'tokenizer.json';
export const SHARDS_DIR = 'shards';

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
  /** The instruction's text and the input's text parts (joined by newlines), for text decontamination. */
  INSTR_TEXT_OFF: 17,
  INSTR_TEXT_LEN: 18,
  INPUT_TEXT_OFF: 19,
  INPUT_TEXT_LEN: 20,
} as const;
export const ROW_WIDTH = 21;

/**
 * An audio span: `<|SOA|>` codes `<|EOA|>`, positioned relative to its record's first token, with
 * its audio id and a 64-bit digest of its tokens (the clip's identity by content: the same
 * recording stored under two ids has one digest). AUDIO_KEY in a row is its first input clip's digest.
 */
export const SPAN = { REL_START: 0, LENGTH: 1, ID_OFF: 2, ID_LEN: 3, KEY_LO: 4, KEY_HI: 5 } as const;
export const SPAN_WIDTH = 6;

/**
 * Per-record columns for stream filters, in row order. SOURCE indexes the shard's `sources`;
 * AUDIO_FRAMES counts codec frames of every clip (windows applied): seconds = frames / frame rate.
 */
export const COLUMN = {
  TASK: 0,
  SPLITS: 1,
  FLAGS: 2,
  TEXT_TOKENS: 3,
  AUDIO_TOKENS: 4,
  AUDIO_FRAMES: 5,
  CLIPS: 6,
  SOURCE: 7,
} as const;
export const COLUMN_WIDTH = 8;
/** Column rows per page: a filter scans whole shards, so its pages are larger than the rows table's. */
export const COLUMN_ROWS_PER_PAGE = 1024;

/** The sections read page by page, in page-table order. */
export const PAGED_SECTIONS = ['tokens', 'rows', 'spans', 'strings', 'lists', 'columns'] as const;
/** The sections the content checksum covers (what a stream serves; the columns only restate it). */
export const CONTENT_SECTIONS = ['tokens', 'rows', 'spans', 'strings', 'lists'] as const;
export type PagedSection = (typeof PAGED_SECTIONS)[number];
export const ROWS_PER_PAGE = 128;
export const SPANS_PER_PAGE = 512;
/**
 * Page sizes (the last page of a section may be shorter). A draw reads one rows, one spans and one
 * lists page, and once the index outgrows the cache most draws miss it, so table pages are small:
 * on a 5M-record synthetic index 16 KB pages served 25 % fewer batches/s than 8 KB ones, and 4 KB
 * no more than 8 KB (docs/performance.md). Row and span pages hold whole rows and spans;
 * strings may straddle pages. A token page holds a few typical records (64 KB).
 */
export const PAGE_BYTES: Readonly<Record<PagedSection, number>> = {
  tokens: 1 << 16,
  rows: ROWS_PER_PAGE * ROW_WIDTH * 4,
  spans: SPANS_PER_PAGE * SPAN_WIDTH * 4,
  strings: 1 << 13,
  lists: 1 << 13,
  columns: COLUMN_ROWS_PER_PAGE * COLUMN_WIDTH * 4,
};
export const PAGE_TOKENS = PAGE_BYTES.tokens / 4;
export const LIST_PAGE_ENTRIES = PAGE_BYTES.lists / 4;
export const PAGE_DIGEST_BYTES = 8;

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
  /** Codec frames of every clip the task's records carry (windows applied): seconds = frames / frame rate. */
  readonly audioFrames: number;
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
  readonly sections: Readonly<Record<PagedSection | 'pages' | 'deps', Section>>;
  /** `content`: of the page table as if tokens were int32 (what the shard serves; see shard-file.ts). */
  readonly checksums: { readonly pages: string; readonly deps: string; readonly content: string };
  readonly maxCodebooks: number;
  /** The distinct `source` lists of the shard's records (a record's COLUMN.SOURCE indexes this). */
  readonly sources: readonly (readonly string[])[];
  /**
   * Quarantined records and files of this shard, counted per reason. The entries themselves are in
   * `quarantineFile` (JSON lines beside the shard file, '' when there are none), never in the
   * manifest: a corpus with a million bad lines must not make a manifest the server takes seconds
   * and gigabytes to open.
   */
  readonly quarantined: Readonly<Partial<Record<QuarantineReason, number>>>;
  readonly quarantineFile: string;
  /** The first entry's detail ('' without any), for the error of a corpus with nothing usable. */
  readonly firstProblem: string;
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
  readonly audioFrames: number;
  /** Per split: [shard index, local task index, count] runs, in shard order. */
  readonly runs: readonly (readonly (readonly [shard: number, local: number, count: number])[])[];
  /** Example-length percentiles p50, p90, p99, max. */
  readonly lengthPercentiles: readonly [number, number, number, number];
  /** Shortest train record (instruction + input + output tokens); Infinity without train records. */
  readonly minLength: number;
  /** Shortest train instruction + output + input up to its first clip: what truncation never cuts. */
  readonly minCoreLength: number;
  /**
   * [minLength, minCoreLength] under each audio layout and k (`layout:k`, k ≤ MIN_TABLE_CODEBOOKS;
   * see tokenize/audio-layouts): a record's served length depends on the stream's layout.
   */
  readonly audioMins?: Readonly<Record<string, readonly [number, number]>>;
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
  /** Records excluded from serving (duplicate uuids across shards); counts and runs are net of them. */
  readonly exclusions: ExclusionsMeta;
  /** The chat template's text pieces, tokenized at index time so serving needs no tokenizer. */
  readonly template: TemplatePieces;
}

/** Where the audio → examples map (audio-groups.ts) is stored: a manifest field. */
export interface AudioGroupsMeta {
  readonly file: string;
  readonly entries: number;
  readonly checksum: string;
}

/** Where the excluded list entries are (see exclusions.ts). */
export interface ExclusionsMeta {
  /** '' when nothing is excluded (then there is no file). */
  readonly file: string;
  /** Excluded records (a record listed under two splits is one record with two entries). */
  readonly records: number;
  readonly entries: number;
  readonly checksum: string;
}

export interface IndexOptions {
  readonly tokenizer: string;
  readonly codebookSize: number;
  readonly maxLineBytes: number;
  /** The codec (codec.json and flags), its codebook count resolved: every clip must have it. */
  readonly codec: { readonly name: string; readonly frameRate: number; readonly codebooks: number };
  /** `--audio-root` prefixes stripped from absolute `.scp` paths (normalized). */
  readonly audioRoots: readonly string[];
}
