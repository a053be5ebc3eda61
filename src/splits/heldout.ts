import { InvalidArgumentError } from '../errors.js';
import { ROW, SPAN, SPAN_WIDTH, type TaskEntry } from '../index/format.js';
import type { IndexReader } from '../index/index-reader.js';
import { matchSelector } from '../mix/selectors.js';
import { digest } from '../util/hash.js';

export interface HeldoutSpec {
  readonly selectors: readonly string[];
  /** Also hold out every task whose records say `unseen: true`. */
  readonly unseenFlag: boolean;
  /** Drop train examples that share an audio id with any held-out example. */
  readonly excludeSharedAudio: boolean;
  /** The heldout evaluation split: every record of the held-out tasks, or only their test split. */
  readonly scope: 'all' | 'test';
}

export const NO_HELDOUT: HeldoutSpec = Object.freeze({ selectors: [], unseenFlag: false, excludeSharedAudio: false, scope: 'all' });

export interface ResolvedHeldout {
  readonly spec: HeldoutSpec;
  readonly name: string;
  /** Held-out task ids (selectors by prefix, i.e. FLAN's cluster rule, plus the unseen flag). */
  readonly tasks: ReadonlySet<number>;
  readonly fingerprint: string;
}

export function resolveHeldout(spec: HeldoutSpec, tasks: readonly TaskEntry[], name = '', field = 'heldout'): ResolvedHeldout {
  if (spec.scope !== 'all' && spec.scope !== 'test') throw new InvalidArgumentError(`${field}.scope`, `"${String(spec.scope)}" is not all or test`);
  const held = new Set<number>();
  for (const sel of spec.selectors) {
    const ids = matchSelector(sel, tasks);
    if (ids.length === 0) throw new InvalidArgumentError(`${field}.selectors`, `"${sel}" matches no task (use domain, domain/major or domain/major/minor)`);
    for (const t of ids) held.add(t);
  }
  if (spec.unseenFlag) for (const t of tasks) if (t.unseen) held.add(t.id);
  const paths = [...held].map((t) => tasks[t]?.path ?? '').sort();
  const fingerprint = digest(JSON.stringify({ paths, excludeSharedAudio: spec.excludeSharedAudio, scope: spec.scope }));
  return { spec, name, tasks: held, fingerprint };
}

/**
 * Which train records share an audio id with a held-out record. The held-out audio ids are
 * collected once per set; each shard's exclusion bitmap is computed on first use.
 */
export class SharedAudioFilter {
  private readonly reader: IndexReader;
  private readonly ids = new Set<string>();
  private readonly bitmaps = new Map<number, Uint8Array>();

  constructor(reader: IndexReader, heldout: ResolvedHeldout) {
    this.reader = reader;
    for (const t of heldout.tasks) {
      const task = reader.tasks[t];
      if (!task) continue;
      const seen = new Set<string>();
      for (const runs of task.runs) {
        for (const [shard, local] of runs) {
          const key = `${shard}:${local}`;
          if (seen.has(key)) continue;
          seen.add(key);
          for (let split = 0 as 0 | 1 | 2; split < 3; split = (split + 1) as 0 | 1 | 2) {
            for (const row of reader.list(shard, local, split)) this.forEachAudio(shard, row, (id) => this.ids.add(id));
          }
        }
      }
    }
  }

  private forEachAudio(shard: number, row: number, fn: (id: string) => void): void {
    const r = this.reader.row(shard, row);
    const spans = this.reader.spans(shard, r[ROW.SPAN_START] ?? 0, r[ROW.SPAN_COUNT] ?? 0);
    for (let so = 0; so < spans.length; so += SPAN_WIDTH) {
      fn(this.reader.string(shard, spans[so + SPAN.ID_OFF] ?? 0, spans[so + SPAN.ID_LEN] ?? 0));
    }
  }

  get heldoutAudioIds(): number {
    return this.ids.size;
  }

  excluded(shard: number, row: number): boolean {
    let bitmap = this.bitmaps.get(shard);
    if (!bitmap) {
      const n = this.reader.shard(shard).records;
      bitmap = new Uint8Array(n);
      for (let r = 0; r < n; r++) {
        this.forEachAudio(shard, r, (id) => {
          if (this.ids.has(id)) bitmap![r] = 1;
        });
      }
      this.bitmaps.set(shard, bitmap);
    }
    return bitmap[row] === 1;
  }
}
