import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';
import { datasetOf } from '../index/datasets.js';
import {
  COLUMN,
  COLUMN_ROWS_PER_PAGE,
  COLUMN_WIDTH,
  FLAG_UNSEEN,
  INDEX_FORMAT_VERSION,
  SPLIT_BIT,
  SPLIT_NAMES,
} from '../index/format.js';
import type { IndexReader, SplitIndex } from '../index/index-reader.js';
import { compileFilter, type FilterPredicate, type FilterRecord } from './evaluate.js';
import { formatFilter, parseFilter, type FilterNode } from './grammar.js';

/** Train records a stream must not serve: those a held-out set's guards remove, those its filter leaves out. */
export interface RecordExclusion {
  excluded(shard: number, row: number): boolean;
}

/** The split names of each SPLITS bit mask. */
const SPLIT_LISTS: readonly (readonly string[])[] = Array.from({ length: 8 }, (_, bits) =>
  SPLIT_NAMES.filter((s) => (bits & SPLIT_BIT[s]) !== 0),
);

/** Whether the tree names a field. */
function names(node: FilterNode, field: string): boolean {
  switch (node.kind) {
    case 'or':
    case 'and':
      return node.items.some((n) => names(n, field));
    case 'not':
      return names(node.item, field);
    default:
      return node.field === field;
  }
}

/**
 * Which records of an index a stream filter keeps. A shard is classified on first touch from its
 * columns section alone (format.ts: 32 bytes a record, nothing decoded), one byte per record, so a
 * draw asks an array; the masks are shared by every stream with the same filter text.
 */
export class RecordFilter implements RecordExclusion {
  /** The canonical text (formatFilter): streams with equal texts share one filter. */
  readonly text: string;
  private readonly reader: IndexReader;
  private readonly predicate: FilterPredicate;
  private readonly masks: (Uint8Array | undefined)[];
  private held = 0;

  constructor(reader: IndexReader, node: FilterNode) {
    const format = reader.manifest.formatVersion;
    if (format !== INDEX_FORMAT_VERSION)
      throw new FailedPreconditionError(
        'index_format',
        `filter: this index is format ${format}, without the per-record columns filters read (format ${INDEX_FORMAT_VERSION}); rebuild it with flanstream index (npm start rebuilds) to filter, or stream without a filter`,
      );
    this.reader = reader;
    this.text = formatFilter(node);
    this.predicate = compileFilter(node);
    this.masks = new Array<undefined>(reader.manifest.shards.length).fill(undefined);
    if (names(node, 'audio_seconds') && !(reader.manifest.vocab.frameRate > 0))
      throw new InvalidArgumentError(
        'filter',
        'names audio_seconds, but the index has no codec frame rate (set frame_rate in audio_tokens/codec.json or index with --frame-rate)',
      );
  }

  /** A filter from a request's text: undefined for none; a bad text is INVALID_ARGUMENT at its position. */
  static parse(reader: IndexReader, text: string | undefined): RecordFilter | undefined {
    const node = parseFilter(text ?? '');
    return node ? new RecordFilter(reader, node) : undefined;
  }

  keeps(shard: number, row: number): boolean {
    return (this.masks[shard] ?? this.classify(shard))[row] === 1;
  }

  excluded(shard: number, row: number): boolean {
    return (this.masks[shard] ?? this.classify(shard))[row] !== 1;
  }

  /** Records of a task's split list (duplicates left out) the filter keeps, from one shard's run. */
  countList(shard: number, local: number, split: SplitIndex): number {
    const mask = this.masks[shard] ?? this.classify(shard);
    let n = 0;
    for (const row of this.reader.list(shard, local, split)) n += mask[row] ?? 0;
    return n;
  }

  /** Records of task `t` holding `split` the filter keeps. */
  count(t: number, split: SplitIndex): number {
    let n = 0;
    for (const [shard, local] of this.reader.tasks[t]?.runs[split] ?? []) n += this.countList(shard, local, split);
    return n;
  }

  /** Bytes of the masks made so far. */
  get bytes(): number {
    return this.held + 256 + 2 * this.text.length;
  }

  private classify(shard: number): Uint8Array {
    const meta = this.reader.shard(shard);
    const mask = new Uint8Array(meta.records);
    const rate = this.reader.manifest.vocab.frameRate;
    const r: FilterRecord = {
      domain: '',
      task: '',
      dataset: datasetOf(meta.source),
      ug: '',
      unseen: false,
      source: [],
      split: [],
      text_tokens: 0,
      audio_tokens: 0,
      audio_seconds: 0,
      clips: 0,
    };
    for (let p = 0; p * COLUMN_ROWS_PER_PAGE < meta.records; p++) {
      const page = this.reader.columnPage(shard, p);
      for (let o = 0; o < page.length; o += COLUMN_WIDTH) {
        const task = meta.tasks[page[o + COLUMN.TASK]!];
        r.domain = task?.domain ?? '';
        r.task = task?.path ?? '';
        r.ug = task?.ug ?? '';
        r.unseen = (page[o + COLUMN.FLAGS]! & FLAG_UNSEEN) !== 0;
        r.source = meta.sources[page[o + COLUMN.SOURCE]!] ?? [];
        r.split = SPLIT_LISTS[page[o + COLUMN.SPLITS]! & 7]!;
        r.text_tokens = page[o + COLUMN.TEXT_TOKENS]!;
        r.audio_tokens = page[o + COLUMN.AUDIO_TOKENS]!;
        r.audio_seconds = rate > 0 ? page[o + COLUMN.AUDIO_FRAMES]! / rate : 0;
        r.clips = page[o + COLUMN.CLIPS]!;
        if (this.predicate(r)) mask[p * COLUMN_ROWS_PER_PAGE + o / COLUMN_WIDTH] = 1;
      }
    }
    this.masks[shard] = mask;
    this.held += mask.byteLength;
    return mask;
  }
}
