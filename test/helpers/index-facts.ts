import { ROW, SPAN, SPAN_WIDTH, SPLIT_BIT } from '../../src/index/format.js';
import type { IndexReader } from '../../src/index/index-reader.js';

/** One record of the index, read straight from its shard's row, span and token sections. */
export interface RecordFacts {
  readonly uuid: string;
  readonly task: number;
  readonly shard: number;
  readonly row: number;
  /** SPLIT_BIT flags. */
  readonly splits: number;
  readonly unseen: boolean;
  readonly instr: Int32Array;
  readonly input: Int32Array;
  readonly output: Int32Array;
  /** Audio spans relative to the record's first token, with their audio ids. */
  readonly spans: readonly {
    readonly start: number;
    readonly length: number;
    readonly id: string;
    readonly key: string;
  }[];
  /** The input's first audio span (the clip a conversation shares), if any. */
  readonly firstInputAudio: string | undefined;
}

/**
 * Ground truth for tests, independent of the stream layer: every record of the index by uuid,
 * with its tokens split into instruction, input and output, and its audio ids.
 */
export class IndexFacts {
  readonly byUuid = new Map<string, RecordFacts>();
  readonly reader: IndexReader;

  constructor(reader: IndexReader) {
    this.reader = reader;
    reader.manifest.shards.forEach((meta, shard) => {
      for (let row = 0; row < meta.records; row++) {
        const fields = reader.row(shard, row);
        const f = (k: number): number => fields[k] ?? 0;
        const spans = reader.spans(shard, f(ROW.SPAN_START), f(ROW.SPAN_COUNT));
        const [start, il, nl, ol] = [f(ROW.TOK_START), f(ROW.INSTR_LEN), f(ROW.INPUT_LEN), f(ROW.OUTPUT_LEN)];
        const all = new Int32Array(il + nl + ol);
        reader.readTokens(shard, start, all.length, all, 0);
        const sp = Array.from({ length: f(ROW.SPAN_COUNT) }, (_, k) => {
          const o = k * SPAN_WIDTH;
          return {
            start: spans[o + SPAN.REL_START] ?? 0,
            length: spans[o + SPAN.LENGTH] ?? 0,
            id: reader.string(shard, spans[o + SPAN.ID_OFF] ?? 0, spans[o + SPAN.ID_LEN] ?? 0),
            key: `${spans[o + SPAN.KEY_LO]}:${spans[o + SPAN.KEY_HI]}`,
          };
        });
        const uuid = reader.uuid(shard, row);
        this.byUuid.set(uuid, {
          uuid,
          task: reader.taskOf(shard, row),
          shard,
          row,
          splits: f(ROW.SPLITS),
          unseen: (f(ROW.FLAGS) & 1) !== 0,
          instr: all.subarray(0, il),
          input: all.subarray(il, il + nl),
          output: all.subarray(il + nl),
          spans: sp,
          firstInputAudio: sp.find((s) => s.start >= il && s.start < il + nl)?.id,
        });
      }
    });
  }

  get(uuid: string): RecordFacts {
    const r = this.byUuid.get(uuid);
    if (!r) throw new Error(`uuid ${uuid} is not in the index`);
    return r;
  }

  /** Uuids of the records of `tasks` that hold any of `splits` (names). */
  uuidsOf(tasks: ReadonlySet<number>, splits: readonly ('train' | 'dev' | 'test')[]): Set<string> {
    const mask = splits.reduce((m, s) => m | SPLIT_BIT[s], 0);
    const out = new Set<string>();
    for (const r of this.byUuid.values()) if (tasks.has(r.task) && (r.splits & mask) !== 0) out.add(r.uuid);
    return out;
  }

  /** Task ids whose path is, or lies under, one of the selectors (component-wise prefix). */
  tasksUnder(selectors: readonly string[]): Set<number> {
    return new Set(
      this.reader.tasks
        .filter((t) => selectors.some((s) => s === t.domain || s === `${t.domain}/${t.major}` || s === t.path))
        .map((t) => t.id),
    );
  }

  /** A task's records of one split in list order (what its permutations index), as uuids. */
  splitList(task: number, split: 0 | 1 | 2 = 0): string[] {
    const out: string[] = [];
    for (const [shard, local] of this.reader.tasks[task]?.runs[split] ?? []) {
      for (const row of this.reader.list(shard, local, split)) out.push(this.reader.uuid(shard, row));
    }
    return out;
  }
}
