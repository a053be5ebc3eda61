import { splitAudioRefs } from '../corpus/audio-refs.js';
import { datasetOf } from '../index/datasets.js';
import { ROW, SPAN, SPAN_WIDTH, SPLIT_BIT } from '../index/format.js';
import type { IndexReader } from '../index/index-reader.js';
import type { ResolvedHeldout } from './heldout.js';
import { forEachNgram, HashList, NgramTable } from './ngrams.js';
import { chunkPages, range, resident, SCAN_CHUNK, type ScanSteps } from './scan-reads.js';
import { finish } from '../util/steps.js';

/** Why a train record is removed, in the order the guards are checked (the first one counts). */
export const GUARDS = ['dataset', 'audio', 'text'] as const;
export type Guard = (typeof GUARDS)[number];

/**
 * Held-out n-grams a set may hold: the table stays under 2²⁴ slots × 12 bytes (200 MB); a
 * held-out set with more text fails with RESOURCE_EXHAUSTED naming the guard.
 */
export const MAX_HELDOUT_NGRAMS = 1 << 23;
const EXAMPLES = 3;
/** Held-out n-grams put in the table between two slice boundaries. */
const TABLE_SLICE = 1 << 16;
/** Train records the report classifies between two event-loop turns (a few ms). */
export const REPORT_SLICE = 1024;

/** What one guard removed because of one held-out task (or, for `dataset`, one held-out dataset). */
export interface GuardRemoval {
  readonly guard: Guard;
  /** The held-out task path the removed records collide with; `dataset NN_Name` for the dataset guard. */
  readonly heldout: string;
  readonly removed: number;
  /** A few [train uuid, held-out uuid] pairs ('' as the held-out uuid for the dataset guard). */
  readonly examples: readonly (readonly [string, string])[];
}

/** The set's cost: what was collected at first use, and how long it took. */
export interface GuardCost {
  readonly heldoutRecords: number;
  readonly heldoutClips: number;
  readonly ngrams: number;
  readonly tableBytes: number;
  readonly buildMs: number;
}

/**
 * The decontamination wall of a held-out set beyond its tasks: which train records must never be
 * served because they belong to a held-out dataset, carry a held-out clip (same audio id, or the
 * same codes under another id: the index digests every clip's tokens), or share an N-gram of
 * normalized words with a held-out record's instruction, input or output text. Built once per set
 * at first use (held-out records are few: their clips and n-grams are collected eagerly, hashed);
 * train records are classified shard by shard on first touch, one byte per record.
 */
export class Contamination {
  private stats: GuardCost | undefined;
  private readonly reader: IndexReader;
  private readonly heldout: ResolvedHeldout;
  /** Held-out records as (shard, row) pairs; "owners" below index into it. */
  private readonly held: number[] = [];
  private readonly clipOwner = new Map<string, number>();
  private ngrams: NgramTable | undefined;
  private readonly reasons = new Map<number, Uint8Array>();

  /** The guard of a set, built at once (tools, tests; the server builds it with `make`, between turns). */
  constructor(reader: IndexReader, heldout: ResolvedHeldout, maxNgrams = MAX_HELDOUT_NGRAMS) {
    this.reader = reader;
    this.heldout = heldout;
    if (maxNgrams >= 0) finish(this.collect(maxNgrams));
  }

  /** The guard of a set, built as a sliced scan of the held-out records (util/steps.ts). */
  static *make(
    reader: IndexReader,
    heldout: ResolvedHeldout,
    maxNgrams = MAX_HELDOUT_NGRAMS,
  ): ScanSteps<Contamination> {
    const guard = new Contamination(reader, heldout, -1);
    yield* guard.collect(maxNgrams);
    return guard;
  }

  /** What was collected at first use, and how long it took. */
  get cost(): GuardCost {
    return this.stats!;
  }

  /**
   * Collects the held-out records, their clips and their n-grams, SCAN_CHUNK records at a time.
   * The n-grams are gathered first and the table made once at its final size, then filled in
   * slices: growing it as they came would rehash the whole table in one piece.
   */
  private *collect(maxNgrams: number): ScanSteps<void> {
    const started = performance.now();
    const { reader, heldout } = this;
    const n = heldout.spec.excludeOverlappingText;
    const hashes = n > 0 ? new HashList() : undefined;
    const audio = heldout.spec.excludeSharedAudio;
    const shards = new Set(heldout.shards);
    for (const t of heldout.tasks)
      for (const runs of reader.tasks[t]?.runs ?? []) for (const [s] of runs) shards.add(s);
    for (const s of [...shards].sort((a, b) => a - b)) {
      const records = reader.shard(s).records;
      for (let from = 0; from < records; from += SCAN_CHUNK) {
        const to = Math.min(records, from + SCAN_CHUNK);
        yield* chunkPages(reader, s, range(from, to), { texts: n > 0, spans: audio });
        for (let row = from; row < to; row++) {
          // Read first, then kept: a record whose pages were missed is read again, never kept twice.
          const got = yield* resident(() => {
            if (reader.isExcluded(s, row) || !this.isHeld(s, row)) return undefined;
            const clips: string[] = [];
            if (audio) this.forEachClip(s, row, (key) => void clips.push(key));
            return { clips, texts: hashes ? this.texts(s, row) : [] };
          });
          if (!got) continue;
          const owner = this.held.length / 2;
          this.held.push(s, row);
          for (const key of got.clips) if (!this.clipOwner.has(key)) this.clipOwner.set(key, owner);
          for (const text of got.texts) forEachNgram(text, n, (lo, hi) => hashes!.push(lo, hi, owner));
        }
        yield;
      }
    }
    if (hashes) {
      const table = new NgramTable(maxNgrams, hashes.length);
      for (let k = 0; k < hashes.length; k++) {
        table.add(hashes.lo[k]!, hashes.hi[k]!, hashes.owner[k]!);
        if ((k + 1) % TABLE_SLICE === 0) yield;
      }
      this.ngrams = table;
    }
    this.stats = {
      heldoutRecords: this.held.length / 2,
      heldoutClips: this.clipOwner.size,
      ngrams: this.ngrams?.size ?? 0,
      tableBytes: this.ngrams?.bytes ?? 0,
      buildMs: performance.now() - started,
    };
  }

  /** Bytes of the guard's typed arrays: the n-gram table and one reason byte per classified record. */
  get arrayBytes(): number {
    let n = this.ngrams?.bytes ?? 0;
    for (const r of this.reasons.values()) n += r.byteLength;
    return n;
  }

  /** What the guard holds in memory, roughly: its arrays, the held-out records and their clip keys (what caches count it as). */
  get bytes(): number {
    return this.arrayBytes + 8 * this.held.length + 96 * this.clipOwner.size + 256;
  }

  /** The uuid of held-out record `partner` (as `classify` returns it). */
  heldUuid(partner: number): string {
    return this.reader.uuid(this.held[partner * 2] ?? 0, this.held[partner * 2 + 1] ?? 0);
  }

  /** Held out by task or by dataset (the records the guards protect). */
  private isHeld(shard: number, row: number): boolean {
    return this.heldout.shards.has(shard) || this.heldout.tasks.has(this.reader.taskOf(shard, row));
  }

  /** Both identities of each clip of a record: `id:` its audio id, `k:` the digest of its codes. */
  private forEachClip(shard: number, row: number, fn: (key: string) => boolean | void): boolean {
    const r = this.reader.row(shard, row);
    const spans = this.reader.spans(shard, r[ROW.SPAN_START] ?? 0, r[ROW.SPAN_COUNT] ?? 0);
    for (let o = 0; o < spans.length; o += SPAN_WIDTH) {
      if (fn(`id:${this.reader.string(shard, spans[o + SPAN.ID_OFF] ?? 0, spans[o + SPAN.ID_LEN] ?? 0)}`) === true)
        return true;
      if (fn(`k:${spans[o + SPAN.KEY_LO] ?? 0}:${spans[o + SPAN.KEY_HI] ?? 0}`) === true) return true;
    }
    return false;
  }

  /** The instruction, the input's text and the output's text of a record (audio references left out). */
  private texts(shard: number, row: number): string[] {
    const r = this.reader.row(shard, row);
    const str = (off: number, len: number): string => this.reader.string(shard, r[off] ?? 0, r[len] ?? 0);
    const output = splitAudioRefs(str(ROW.OUT_TEXT_OFF, ROW.OUT_TEXT_LEN))
      .flatMap((p) => (p.kind === 'text' ? [p.text] : []))
      .join('\n');
    return [str(ROW.INSTR_TEXT_OFF, ROW.INSTR_TEXT_LEN), str(ROW.INPUT_TEXT_OFF, ROW.INPUT_TEXT_LEN), output];
  }

  /** The first guard removing a train record and the held-out record it collides with (-1: none, or the dataset guard). */
  classify(shard: number, row: number): { guard: Guard | undefined; partner: number } {
    if (this.heldout.shards.has(shard)) return { guard: 'dataset', partner: -1 };
    let partner = -1;
    if (this.heldout.spec.excludeSharedAudio) {
      this.forEachClip(shard, row, (key) => (partner = this.clipOwner.get(key) ?? -1) >= 0);
      if (partner >= 0) return { guard: 'audio', partner };
    }
    if (this.ngrams) {
      const n = this.heldout.spec.excludeOverlappingText;
      for (const text of this.texts(shard, row)) {
        forEachNgram(text, n, (lo, hi) => (partner = this.ngrams!.ownerOf(lo, hi)) >= 0);
        if (partner >= 0) return { guard: 'text', partner };
      }
    }
    return { guard: undefined, partner: -1 };
  }

  /** Whether a guard removes this train record (records of held-out tasks are never asked about). */
  excluded(shard: number, row: number): boolean {
    return ((this.reasons.get(shard) ?? finish(this.classifyShard(shard)))[row] ?? 0) !== 0;
  }

  /** Whether shard's train records are classified (excluded() on it reads nothing). */
  classified(shard: number): boolean {
    return this.reasons.has(shard);
  }

  /** Classifies a shard's train records, one byte each, SCAN_CHUNK records between boundaries; kept once done. */
  *classifyShard(shard: number): ScanSteps<Uint8Array> {
    const had = this.reasons.get(shard);
    if (had) return had;
    const reasons = new Uint8Array(this.reader.shard(shard).records);
    const spans = this.heldout.spec.excludeSharedAudio;
    const texts = this.heldout.spec.excludeOverlappingText > 0;
    for (let from = 0; from < reasons.length; from += SCAN_CHUNK) {
      const to = Math.min(reasons.length, from + SCAN_CHUNK);
      yield* chunkPages(this.reader, shard, range(from, to), { spans, texts });
      for (let r = from; r < to; r++) {
        reasons[r] = yield* resident(() => {
          // Records of held-out tasks never reach a train stream; those of held-out datasets are the dataset guard's.
          if (
            ((this.reader.row(shard, r)[ROW.SPLITS] ?? 0) & SPLIT_BIT.train) === 0 ||
            this.heldout.tasks.has(this.reader.taskOf(shard, r))
          )
            return 0;
          const { guard } = this.classify(shard, r);
          return guard ? GUARDS.indexOf(guard) + 1 : 0;
        });
      }
      yield;
    }
    const done = this.reasons.get(shard) ?? reasons;
    this.reasons.set(shard, done);
    return done;
  }

  /**
   * What each guard removes from the train records of tasks that are not held out, grouped by the
   * held-out task (or dataset) it collides with, with a few example uuid pairs: the report of
   * `inspect --contamination` and GetCorpusInfo. Sorted by guard, then by held-out name.
   */
  report(): GuardRemoval[] {
    return (this.reported ??= finish(this.reportSteps()));
  }

  /** The report, computed once and shared by concurrent callers, as a sliced scan run by `run` (util/steps.ts `drive`). */
  reportAsync(run: (g: ScanSteps<GuardRemoval[]>) => Promise<GuardRemoval[]>): Promise<GuardRemoval[]> {
    if (this.reported) return Promise.resolve(this.reported);
    this.reporting ??= run(this.reportSteps()).then(
      (r) => (this.reported ??= r),
      (err: unknown) => {
        this.reporting = undefined;
        throw err;
      },
    );
    return this.reporting;
  }

  private reporting: Promise<GuardRemoval[]> | undefined;
  private reported: GuardRemoval[] | undefined;

  /** The report's scan, yielding every REPORT_SLICE train records (a set's report never changes: kept once done). */
  private *reportSteps(): ScanSteps<GuardRemoval[]> {
    const groups = new Map<string, { guard: Guard; heldout: string; removed: number; examples: [string, string][] }>();
    let seen = 0;
    const spans = this.heldout.spec.excludeSharedAudio;
    const texts = this.heldout.spec.excludeOverlappingText > 0;
    for (const t of this.reader.tasks) {
      if (this.heldout.tasks.has(t.id)) continue;
      for (const [shard, local] of t.runs[0] ?? []) {
        const list = yield* resident(() => this.reader.list(shard, local, 0));
        for (let k = 0; k < list.length; k++) {
          if (k % SCAN_CHUNK === 0)
            yield* chunkPages(this.reader, shard, list.subarray(k, k + SCAN_CHUNK), { spans, texts });
          if (++seen % REPORT_SLICE === 0) yield;
          const row = list[k]!;
          const { guard, partner } = yield* resident(() => this.classify(shard, row));
          if (!guard) continue;
          const heldShard = this.held[partner * 2] ?? -1;
          const heldRow = this.held[partner * 2 + 1] ?? -1;
          const [heldout, example] = yield* resident((): [string, [string, string]] => [
            guard === 'dataset'
              ? `dataset ${datasetOf(this.reader.shard(shard).source)}`
              : (this.reader.tasks[this.reader.taskOf(heldShard, heldRow)]?.path ?? ''),
            [this.reader.uuid(shard, row), partner >= 0 ? this.reader.uuid(heldShard, heldRow) : ''],
          ]);
          const key = `${GUARDS.indexOf(guard)}\u0000${heldout}`;
          let g = groups.get(key);
          if (!g) groups.set(key, (g = { guard, heldout, removed: 0, examples: [] }));
          g.removed++;
          if (g.examples.length < EXAMPLES) g.examples.push(example);
        }
      }
    }
    return [...groups.keys()].sort().map((k) => groups.get(k)!);
  }
}
