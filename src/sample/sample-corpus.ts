/**
 * `flanstream sample-corpus`: a synthetic corpus in the exact Audio-FLAN release layout
 * (docs/corpus.md) with all 80 tasks, the paper's domain skew, shared clips across tasks of a dataset,
 * a few `unseen` tasks, English and Chinese text, gzip and plain shards, and real `.npy` token files,
 * in the shapes the published release uses (sample-release-shape.ts: string and list records, time
 * windows, three `.scp` path forms, codec.json). Deterministic: the same records/seed give a
 * byte-identical tree. Clean records only, once indexed with `--audio-root SAMPLE_AUDIO_ROOT`.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeNpy } from './npy-writer.js';
import { clipCodes, clipSeconds, makeClip, tokenPath, type Clip } from './sample-datasets.js';
import { SPLITS, clipReuse, planDatasets, recordCounts, splitCounts } from './sample-plan.js';
import { SAMPLE_CODEC, scpLine, shapeFields, windowFields } from './sample-release-shape.js';
import { Rng, UuidMaker, hashInts, hashString } from './sample-rng.js';
import type { TaskTemplate } from './sample-task-kit.js';
import { AUDIO_TEMPLATES } from './sample-tasks-audio.js';
import { MUSIC_TEMPLATES } from './sample-tasks-music.js';
import { SPEECH_RECOGNITION_TEMPLATES } from './sample-tasks-speech.js';
import { SPEECH_GENERATION_TEMPLATES } from './sample-tasks-speech-gen.js';
import { AUDIO_FLAN_TASKS, taskPath, type Domain, type TaskKind } from './task-catalog.js';

/** Tasks whose records carry `unseen: true` in the sample corpus (Audio-FLAN publishes no list). */
export const SAMPLE_UNSEEN_TASKS: readonly string[] = [
  'speech/Speaker Recognition/Speaker Diarization',
  'speech/Speech Detection/Device Recognition',
  'music/Single Music Reasoning/Beat-level Pitch Estimation',
  'music/Multiple Music Reasoning/Instrumental Technique Comparison',
  'audio/Audio Advanced Understanding/Sound Event Understanding',
  'audio/Audio Generation/Time-grounded Text-to-Audio Generation',
];

/** Maximum records per `.jsonl` shard; larger tasks span several shards. */
export const SHARD_MAX_RECORDS = 2000;

export interface SampleCorpusOptions {
  /** Target record count (≥ 80 × 12 are always written so that every task has train/dev/test). */
  readonly records: number;
  readonly seed: number;
  /** Remove an existing metadata/, scp_files/ and audio_tokens/ under `dir` first (otherwise that is an error). */
  readonly overwrite?: boolean;
}

export interface SampleTaskSummary {
  readonly path: string;
  readonly domain: Domain;
  readonly major: string;
  readonly minor: string;
  readonly ug: TaskKind;
  readonly dataset: string;
  readonly unseen: boolean;
  readonly train: number;
  readonly dev: number;
  readonly test: number;
  readonly total: number;
}

export interface SampleCorpusSummary {
  readonly dir: string;
  readonly seed: number;
  readonly records: number;
  readonly byDomain: Readonly<Record<Domain, number>>;
  readonly bySplit: Readonly<{ train: number; dev: number; test: number }>;
  readonly tasks: readonly SampleTaskSummary[];
  readonly datasets: number;
  /** Audio clips (scp entries = .npy files). */
  readonly clips: number;
  /** Clips referenced by two or more tasks. */
  readonly sharedClips: number;
  readonly files: Readonly<{ jsonl: number; jsonlGz: number; scp: number; npy: number; total: number }>;
  /** Bytes written (file contents). */
  readonly bytes: number;
}

const TEMPLATES: readonly TaskTemplate[] = AUDIO_FLAN_TASKS.map((t) => {
  const all = [...SPEECH_RECOGNITION_TEMPLATES, ...SPEECH_GENERATION_TEMPLATES, ...MUSIC_TEMPLATES, ...AUDIO_TEMPLATES];
  const found = all.find((x) => x.domain === t.domain && x.minor === t.minor);
  if (!found) throw new Error(`no sample template for ${taskPath(t)}`);
  return found;
});

const countRefs = (field: string): number => field.split('<|SOA|>').length - 1;

const slug = (s: string): string =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

const TEST = SPLITS.indexOf('test');

const countOf = (splits: Uint8Array, v: number): number => splits.reduce((n, x) => n + (x === v ? 1 : 0), 0);

/**
 * One folder's lines of a task, cut into `ceil(count / SHARD_MAX_RECORDS)` shards of near-equal
 * size as they arrive: shard s holds lines [floor(s·count/shards), floor((s+1)·count/shards)).
 * At most one shard's lines are held, so the corpus is written in memory bounded by a shard,
 * whatever --records is.
 */
class ShardWriter {
  private readonly shards: number;
  private lines: string[] = [];
  private shard = 0;
  private added = 0;

  constructor(
    private readonly count: number,
    private readonly emit: (shard: number, text: string) => void,
  ) {
    this.shards = Math.ceil(count / SHARD_MAX_RECORDS);
  }

  add(line: string): void {
    this.lines.push(line);
    this.added++;
    if (this.added === Math.floor(((this.shard + 1) * this.count) / this.shards)) {
      this.emit(this.shard++, `${this.lines.join('\n')}\n`);
      this.lines = [];
    }
  }
}

export async function writeSampleCorpus(dir: string, opts: SampleCorpusOptions): Promise<SampleCorpusSummary> {
  if (!Number.isInteger(opts.records) || opts.records < 0)
    throw new Error(`records must be a non-negative integer, got ${String(opts.records)}`);
  if (!Number.isSafeInteger(opts.seed)) throw new Error(`seed must be an integer, got ${String(opts.seed)}`);
  const roots = ['metadata', 'scp_files', 'audio_tokens'].map((r) => join(dir, r));
  for (const root of roots) {
    if (!existsSync(root)) continue;
    if (!opts.overwrite) throw new Error(`${root} already exists; choose an empty directory or pass overwrite`);
    rmSync(root, { recursive: true, force: true });
  }

  const seedKey = hashInts(opts.seed >>> 0, Math.floor(Math.abs(opts.seed) / 0x100000000), opts.seed < 0 ? 1 : 0);
  const rng = new Rng(seedKey);
  const counts = recordCounts(opts.records);
  const plans = planDatasets(counts, TEMPLATES, clipReuse(opts.records), rng);
  const clipsOf = new Map<string, Clip[]>();
  for (const p of plans)
    clipsOf.set(
      p.ds.folder,
      Array.from({ length: p.clips }, (_, i) => makeClip(p.ds, i, p.clips, seedKey)),
    );
  const planOf = new Map(plans.map((p) => [p.ds.folder, p]));

  let bytes = 0;
  const files = { jsonl: 0, jsonlGz: 0, scp: 0, npy: 0 };
  const made = new Set<string>();
  const write = (path: string, data: Buffer | string): void => {
    const parent = dirname(path);
    if (!made.has(parent)) {
      mkdirSync(parent, { recursive: true });
      made.add(parent);
    }
    writeFileSync(path, data);
    bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  };

  const unseenSet = new Set(SAMPLE_UNSEEN_TASKS);
  const byDomain: Record<Domain, number> = { speech: 0, music: 0, audio: 0 };
  const bySplit = { train: 0, dev: 0, test: 0 };
  const tasks: SampleTaskSummary[] = [];
  const uuids = new UuidMaker(seedKey);
  let uuidIndex = 0;

  const writeShard = (
    task: (typeof AUDIO_FLAN_TASKS)[number],
    folder: 'train_dev' | 'test',
    s: number,
    text: string,
  ): void => {
    const rel = `metadata/${task.domain}/${task.ug}/${folder}/${task.dataset}/jsonl/${slug(task.minor)}_${folder}_${String(s).padStart(3, '0')}.jsonl`;
    if (hashString(rel) % 3 === 0) {
      write(join(dir, `${rel}.gz`), gzipSync(Buffer.from(text, 'utf8'), { level: 1 }));
      files.jsonlGz++;
    } else {
      write(join(dir, rel), text);
      files.jsonl++;
    }
  };

  AUDIO_FLAN_TASKS.forEach((task, ti) => {
    const tpl = TEMPLATES[ti] as TaskTemplate;
    const plan = planOf.get(task.dataset);
    const clips = clipsOf.get(task.dataset);
    if (!plan || !clips) throw new Error(`no dataset plan for ${task.dataset}`);
    const recs = plan.records.get(ti);
    if (!recs) throw new Error(`no record plan for ${taskPath(task)}`);
    const total = recs.primary.length;
    const split = splitCounts(total);
    const path = taskPath(task);
    const unseen = unseenSet.has(path);
    // Lines go out shard by shard as they are made: a task's lines are never all in memory.
    const out = {
      train_dev: new ShardWriter(total - countOf(recs.split, TEST), (s, text) =>
        writeShard(task, 'train_dev', s, text),
      ),
      test: new ShardWriter(countOf(recs.split, TEST), (s, text) => writeShard(task, 'test', s, text)),
    };
    for (let j = 0; j < total; j++) {
      const p = clips[recs.primary[j] ?? 0] as Clip;
      const x = recs.extras.map((s) => clips[s[j] ?? 0] as Clip);
      const zh = tpl.zh !== undefined && rng.chance(p.lang === 'zh' ? 0.5 : 0.15);
      const instruction = zh && tpl.zh ? rng.pick(tpl.zh) : rng.pick(tpl.instr);
      const made = tpl.make({ rng, p, x, zh });
      const splitName = SPLITS[recs.split[j] ?? 0] ?? 'train';
      const other =
        made.other !== undefined
          ? made.other
          : rng.chance(0.2)
            ? { duration: Number(clipSeconds(p).toFixed(2)) }
            : null;
      const n = uuidIndex++;
      const refs = [p, ...x].filter((c) => `${made.input}${made.output}`.includes(`<|SOA|>${c.id}<|EOA|>`));
      const shape = {
        split: splitName,
        major: task.major,
        minor: task.minor,
        ug: task.ug,
        unseen,
        domain: task.domain,
        source: plan.ds.source,
        other,
      };
      // Same bytes as JSON.stringify of the record object (field order of docs/corpus.md), built faster.
      const line =
        `{"instruction":${JSON.stringify(instruction)},"input":${JSON.stringify(made.input)},` +
        `"output":${JSON.stringify(made.output)},"uuid":"${uuids.make(rng, n)}",` +
        `${shapeFields(shape, seedKey, n)}${refs[0] ? windowFields(refs[0], countRefs(made.input) + countRefs(made.output), seedKey, n) : ''}}`;
      out[splitName === 'test' ? 'test' : 'train_dev'].add(line);
      bySplit[splitName]++;
    }
    byDomain[task.domain] += total;
    tasks.push({
      path,
      domain: task.domain,
      major: task.major,
      minor: task.minor,
      ug: task.ug,
      dataset: task.dataset,
      unseen,
      ...split,
      total,
    });
  });

  let clipsTotal = 0;
  let sharedClips = 0;
  for (const p of plans) {
    const clips = clipsOf.get(p.ds.folder) ?? [];
    clipsTotal += clips.length;
    sharedClips += p.sharedClips;
    write(join(dir, 'scp_files', p.ds.domain, `${p.ds.folder}.scp`), clips.map(scpLine).join(''));
    files.scp++;
    for (const clip of clips) {
      const { codes, shape } = clipCodes(clip);
      write(join(dir, 'audio_tokens', tokenPath(clip)), encodeNpy(codes, shape, clip.ds.dtype));
      files.npy++;
    }
  }

  write(join(dir, 'audio_tokens', 'codec.json'), `${JSON.stringify(SAMPLE_CODEC)}\n`);
  const records = bySplit.train + bySplit.dev + bySplit.test;
  return {
    dir,
    seed: opts.seed,
    records,
    byDomain,
    bySplit,
    tasks,
    datasets: plans.length,
    clips: clipsTotal,
    sharedClips,
    files: { ...files, total: files.jsonl + files.jsonlGz + files.scp + files.npy },
    bytes,
  };
}
