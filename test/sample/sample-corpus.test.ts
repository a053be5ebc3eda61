import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../../src/sample/npy-writer.js';
import {
  SAMPLE_UNSEEN_TASKS,
  SHARD_MAX_RECORDS,
  writeSampleCorpus,
  type SampleCorpusSummary,
} from '../../src/sample/sample-corpus.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { AUDIO_FLAN_TASKS, DOMAINS, taskPath } from '../../src/sample/task-catalog.js';

interface Rec {
  instruction: string;
  input: string;
  output: string;
  uuid: string;
  split: string[];
  task_type: { major: string[]; minor: string[]; 'U/G': string[]; unseen: boolean };
  domain: string;
  source: string[];
  other: unknown;
}
/** `rec` in the paper's list form (string fields of the release form read as one-element lists); `raw` as written. */
interface Loaded {
  rec: Rec;
  raw: Record<string, unknown>;
  file: string;
}

const list = (v: unknown): unknown => (typeof v === 'string' ? [v] : v);
function normalize(raw: Record<string, unknown>): Rec {
  const tt = raw['task_type'] as Record<string, unknown>;
  return {
    ...(raw as unknown as Rec),
    split: list(raw['split']) as string[],
    source: list(raw['source']) as string[],
    other: raw['other'] === undefined ? null : raw['other'],
    task_type: {
      major: list(tt['major']) as string[],
      minor: list(tt['minor']) as string[],
      'U/G': list(tt['U/G']) as string[],
      unseen: (tt['unseen'] ?? false) as boolean,
    },
  };
}

const AUDIO_REF = /<\|SOA\|>(.*?)<\|EOA\|>/g;
const HAN = /[\u4e00-\u9fff]/;
const dirs: string[] = [];

function tempDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `flanstream-sample-${tag}-`));
  dirs.push(d);
  return d;
}

function listFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort();
}

/** Minimal independent .npy reader: header dict and codes. */
function readNpy(buf: Buffer): { descr: string; shape: number[]; codes: number[] } {
  expect(buf.subarray(0, 6).equals(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]))).toBe(true);
  expect([buf[6], buf[7]]).toEqual([1, 0]);
  const hlen = buf.readUInt16LE(8);
  expect((10 + hlen) % 64).toBe(0);
  const header = buf.toString('latin1', 10, 10 + hlen);
  const m = /^\{'descr': '(<[iu][248])', 'fortran_order': False, 'shape': \(([\d, ]+)\), \} *\n$/.exec(header);
  if (!m?.[1] || !m[2]) throw new Error(`bad npy header ${header}`);
  const shape = m[2]
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const size = Number(m[1].slice(2));
  const n = shape.reduce((a, b) => a * b, 1);
  expect(buf.length).toBe(10 + hlen + n * size);
  const codes: number[] = [];
  for (let i = 0; i < n; i++) {
    const at = 10 + hlen + i * size;
    switch (m[1]) {
      case '<i2':
        codes.push(buf.readInt16LE(at));
        break;
      case '<u2':
        codes.push(buf.readUInt16LE(at));
        break;
      case '<i4':
        codes.push(buf.readInt32LE(at));
        break;
      default:
        codes.push(Number(buf.readBigInt64LE(at)));
    }
  }
  return { descr: m[1], shape, codes };
}

function loadRecords(root: string): Loaded[] {
  const out: Loaded[] = [];
  for (const file of listFiles(join(root, 'metadata'))) {
    const raw = readFileSync(join(root, 'metadata', file));
    const text = (file.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.slice(0, -1).split('\n')) {
      const raw = JSON.parse(line) as Record<string, unknown>;
      out.push({ rec: normalize(raw), raw, file });
    }
  }
  return out;
}

function treeDigest(root: string): Map<string, string> {
  return new Map(
    listFiles(root).map((f) => [
      f,
      createHash('sha256')
        .update(readFileSync(join(root, f)))
        .digest('hex'),
    ]),
  );
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('task catalog', () => {
  it('has the 80 Audio-FLAN tasks in 23 major tasks and 3 domains', () => {
    expect(AUDIO_FLAN_TASKS).toHaveLength(80);
    expect(DOMAINS).toEqual(['speech', 'music', 'audio']);
    expect(new Set(AUDIO_FLAN_TASKS.map(taskPath)).size).toBe(80);
    expect(new Set(AUDIO_FLAN_TASKS.map((t) => `${t.domain}/${t.major}`)).size).toBe(23);
    const minors = (d: string): number => AUDIO_FLAN_TASKS.filter((t) => t.domain === d).length;
    expect([minors('speech'), minors('music'), minors('audio')]).toEqual([34, 28, 18]);
    expect(AUDIO_FLAN_TASKS.filter((t) => t.ug === 'understanding')).toHaveLength(51);
    expect(
      new Set(AUDIO_FLAN_TASKS.filter((t) => t.ug === 'generation').map((t) => `${t.domain}/${t.major}`)).size,
    ).toBe(7);
    const tgss = AUDIO_FLAN_TASKS.filter((t) => t.minor === 'Text-guided Source Separation').map((t) => t.domain);
    expect(tgss.sort()).toEqual(['audio', 'music']);
    expect(AUDIO_FLAN_TASKS.find((t) => t.minor === 'ASR')).toMatchObject({
      domain: 'speech',
      major: 'Speech Recognition',
      ug: 'understanding',
    });
  });

  it('follows the paper sizes: domains, major tasks and 52 datasets', () => {
    const sum = (f: (t: (typeof AUDIO_FLAN_TASKS)[number]) => boolean): number =>
      AUDIO_FLAN_TASKS.filter(f).reduce((s, t) => s + t.instances, 0);
    expect(sum((t) => t.domain === 'speech')).toBe(100_420_000);
    expect(sum((t) => t.domain === 'audio')).toBe(5_910_000);
    expect(Math.round(sum((t) => t.domain === 'music') / 10_000)).toBe(217);
    const majors: Record<string, number> = {
      'Speech Recognition': 12.05e6,
      'Spoken Language Understanding': 26.25e6,
      'Paralinguistic Attribute Recognition': 16.47e6,
      'Speaker Recognition': 0.73e6,
      'Speech Caption': 0.35e6,
      'Speech Detection': 1.57e6,
      'Speech Enhancement': 1.48e6,
      'Speech Generation': 41.52e6,
      'Global MIR': 0.34e6,
      'Sequential MIR': 0.43e6,
      'Single Music Reasoning': 95_860,
      'Multiple Music Reasoning': 0.57e6,
      'Music Caption': 28_210,
      'Music Separation': 40_260,
      'Music Generation': 0.67e6,
      'Audio Event Recognition': 1.3e6,
      'Audio Caption': 0.82e6,
      'Audio Advanced Understanding': 10_000,
      'Audio Detection': 1.08e6,
      'Audio Classification': 0.38e6,
      'Audio Enhancement': 0.15e6,
      'Audio Separation': 0.89e6,
      'Audio Generation': 1.31e6,
    };
    for (const [major, size] of Object.entries(majors)) {
      const got = sum((t) => t.major === major);
      expect(Math.abs(got - size), major).toBeLessThanOrEqual(5_000); // printed sizes are rounded
    }
    const datasets = new Set(AUDIO_FLAN_TASKS.map((t) => t.dataset));
    expect(datasets.size).toBe(52);
    for (const d of datasets) expect(d).toMatch(/^\d\d_[A-Za-z0-9-]+$/);
    expect(datasets.has('13_LibriTTS-R')).toBe(true);
  });
});

describe('sample corpus (20,000 records, seed 0)', () => {
  let root = '';
  let summary: SampleCorpusSummary;
  let records: Loaded[] = [];
  const scp = new Map<string, { path: string; dataset: string; domain: string }>();
  const scpForms = { audioFiles: 0, root: 0, absolute: 0 };

  beforeAll(async () => {
    root = tempDir('main');
    summary = await writeSampleCorpus(root, { records: 20_000, seed: 0 });
    records = loadRecords(root);
    for (const file of listFiles(join(root, 'scp_files'))) {
      const [domain, name] = file.split('/');
      for (const line of readFileSync(join(root, 'scp_files', file), 'utf8')
        .trimEnd()
        .split('\n')) {
        const [id, path, ...rest] = line.split(' ');
        expect(rest).toEqual([]);
        expect(scp.has(id ?? '')).toBe(false);
        // Relative to audio_files/, to the corpus root, or absolute under the sample's fake root.
        const form = path?.startsWith(`${SAMPLE_AUDIO_ROOT}/audio_files/`)
          ? 'absolute'
          : path?.startsWith('audio_files/')
            ? 'root'
            : 'audioFiles';
        scpForms[form]++;
        const rel = (path ?? '').replace(`${SAMPLE_AUDIO_ROOT}/`, '').replace(/^audio_files\//, '');
        scp.set(id ?? '', { path: rel, dataset: (name ?? '').replace(/\.scp$/, ''), domain: domain ?? '' });
      }
    }
  });

  it('writes the requested number of schema-exact records with unique uuids', () => {
    expect(records).toHaveLength(20_000);
    expect(summary.records).toBe(20_000);
    const listKeys = 'instruction,input,output,uuid,split,task_type,domain,source,other';
    const stringKeys = new Set([
      'instruction,input,output,uuid,split,task_type,domain,source',
      'instruction,input,output,uuid,split,task_type,domain,source,other',
    ]);
    const bad = records.filter(
      ({ rec, raw }) =>
        (Array.isArray(raw['split'])
          ? Object.keys(raw)
              .filter((k) => !k.startsWith('audio_'))
              .join(',') !== listKeys || Object.keys(rec.task_type).join(',') !== 'major,minor,U/G,unseen'
          : !stringKeys.has(
              Object.keys(raw)
                .filter((k) => !k.startsWith('audio_'))
                .join(','),
            ) || raw['other'] === null) ||
        typeof rec.task_type.unseen !== 'boolean' ||
        ![rec.instruction, rec.input, rec.output, rec.uuid, rec.domain].every(
          (v) => typeof v === 'string' && v.length > 0,
        ) ||
        !/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(rec.uuid) ||
        !Array.isArray(rec.source) ||
        rec.source.length === 0 ||
        !(rec.other === null || (typeof rec.other === 'object' && !Array.isArray(rec.other))),
    );
    expect(bad.slice(0, 3)).toEqual([]);
    expect(new Set(records.map((r) => r.rec.uuid)).size).toBe(records.length);
  });

  it('has all 80 tasks in the right folders with train, dev and test records', () => {
    const seen = new Map<string, { train: number; dev: number; test: number }>();
    const byPath = new Map(AUDIO_FLAN_TASKS.map((t) => [taskPath(t), t]));
    const bad: string[] = [];
    for (const { rec, file } of records) {
      const path = `${rec.domain}/${rec.task_type.major[0]}/${rec.task_type.minor[0]}`;
      const task = byPath.get(path);
      const split = rec.split[0] as 'train' | 'dev' | 'test';
      const [domain, ug, folder, dataset, jsonl] = file.split('/');
      const ok =
        task !== undefined &&
        rec.task_type.major.length === 1 &&
        rec.task_type.minor.length === 1 &&
        rec.task_type['U/G'].join() === task.ug &&
        [domain, ug, dataset, jsonl].join('/') === [task.domain, task.ug, task.dataset, 'jsonl'].join('/') &&
        rec.split.length === 1 &&
        ['train', 'dev', 'test'].includes(split) &&
        folder === (split === 'test' ? 'test' : 'train_dev');
      if (!ok) bad.push(`${file}: ${JSON.stringify(rec)}`);
      const c = seen.get(path) ?? { train: 0, dev: 0, test: 0 };
      c[split]++;
      seen.set(path, c);
    }
    expect(bad.slice(0, 3)).toEqual([]);
    expect(seen.size).toBe(80);
    for (const [path, c] of seen) {
      expect(c.train + c.dev + c.test, path).toBeGreaterThanOrEqual(12);
      expect(c.dev, path).toBeGreaterThanOrEqual(2);
      expect(c.test, path).toBeGreaterThanOrEqual(2);
      expect(summary.tasks.find((t) => t.path === path)).toMatchObject(c);
    }
    const split = (s: string): number => records.filter((r) => r.rec.split[0] === s).length / records.length;
    expect(split('train')).toBeGreaterThan(0.88);
    expect(split('dev')).toBeGreaterThan(0.04);
    expect(split('test')).toBeGreaterThan(0.04);
  });

  it('follows the paper skew: speech 92.6 %, audio 5.4 %, music 2.0 %', () => {
    const share = (d: string): number => (100 * records.filter((r) => r.rec.domain === d).length) / records.length;
    expect(Math.abs(share('speech') - 92.6)).toBeLessThan(0.5);
    expect(Math.abs(share('audio') - 5.4)).toBeLessThan(0.5);
    expect(Math.abs(share('music') - 2.0)).toBeLessThan(0.5);
    expect(summary.byDomain).toEqual({
      speech: records.filter((r) => r.rec.domain === 'speech').length,
      music: records.filter((r) => r.rec.domain === 'music').length,
      audio: records.filter((r) => r.rec.domain === 'audio').length,
    });
  });

  it('resolves every audio reference through its dataset scp to a valid .npy', () => {
    const byTask = new Map(AUDIO_FLAN_TASKS.map((t) => [`${t.domain}/${t.minor}`, t]));
    const checked = new Map<string, number>();
    const bad: string[] = [];
    let maxAudioTokens = 0;
    for (const { rec } of records) {
      const task = byTask.get(`${rec.domain}/${rec.task_type.minor[0] ?? ''}`);
      let audioTokens = 0;
      for (const m of `${rec.input}\n${rec.output}`.matchAll(AUDIO_REF)) {
        const id = m[1] ?? '';
        const entry = scp.get(id);
        if (!entry || !task) {
          bad.push(`unresolved ${id}`);
          continue;
        }
        if (
          entry.dataset !== task.dataset ||
          entry.domain !== task.domain ||
          !id.startsWith(`${task.dataset}_`) ||
          !entry.path.startsWith(`${task.domain}/${task.dataset}/`)
        ) {
          bad.push(`${id} -> ${entry.path} is not in ${task.dataset}`);
        }
        let n = checked.get(id);
        if (n === undefined) {
          const npy = join(root, 'audio_tokens', entry.path.replace(/\.[^./]+$/, '.npy'));
          const { shape, codes } = readNpy(readFileSync(npy));
          const frames = shape[shape.length - 1] ?? 0;
          if (!(shape.length === 2 && shape[0] === 8) || frames < 3 || frames > 150) {
            bad.push(`${npy}: shape (${shape.join(', ')})`);
          }
          if (codes.some((c) => c < 0 || c >= 1024)) bad.push(`${npy}: code out of range`);
          n = codes.length;
          checked.set(id, n);
        }
        audioTokens += n;
      }
      maxAudioTokens = Math.max(maxAudioTokens, audioTokens);
    }
    expect(bad.slice(0, 5)).toEqual([]);
    expect(maxAudioTokens).toBeLessThanOrEqual(1200);
    expect(checked.size).toBe(summary.clips);
    expect(scp.size).toBe(summary.clips);
    expect(listFiles(join(root, 'audio_tokens')).filter((f) => f.endsWith('.npy')).length).toBe(summary.clips);
    const descrs = new Set(
      listFiles(join(root, 'audio_tokens'))
        .filter((f) => f.endsWith('.npy'))
        .slice(0, 4000)
        .map((f) => readNpy(readFileSync(join(root, 'audio_tokens', f))).descr),
    );
    expect(descrs).toEqual(new Set(['<i2', '<u2', '<i4', '<i8']));
  });

  it('writes the release shapes: a third of records in string form, time windows, three .scp path forms, codec.json', () => {
    const stringForm = records.filter((r) => typeof r.raw['split'] === 'string');
    expect(Math.abs(stringForm.length / records.length - 1 / 3)).toBeLessThan(0.02);
    expect(stringForm.some((r) => !('unseen' in (r.raw['task_type'] as object)))).toBe(true);
    expect(stringForm.some((r) => 'other' in r.raw)).toBe(true);
    const windowed = records.filter((r) => 'audio_start' in r.raw || 'audio_end' in r.raw);
    expect(windowed.length / records.length).toBeGreaterThan(0.02);
    for (const key of ['audio_start', 'audio_end']) expect(windowed.some((r) => !(key in r.raw))).toBe(true);
    for (const n of Object.values(scpForms)) expect(n / scp.size).toBeGreaterThan(0.3);
    expect(JSON.parse(readFileSync(join(root, 'audio_tokens', 'codec.json'), 'utf8'))).toEqual({
      name: 'xcodec',
      frame_rate: 50,
      codebook_size: 1024,
      codebooks: 8,
    });
  });

  it('puts audio where the task kind says', () => {
    const has = (s: string): boolean => s.includes('<|SOA|>');
    const bad = records.filter(({ rec }) =>
      rec.task_type['U/G'][0] === 'understanding'
        ? !has(rec.input) || has(rec.output)
        : rec.task_type.minor[0] !== 'SNR Estimation' && !has(rec.output),
    );
    expect(bad.slice(0, 3)).toEqual([]);
    const inputs = records.map((r) => r.rec.input);
    const outputs = records.map((r) => r.rec.output);
    expect(
      inputs.some((s) => /^audio_sample1: <\|SOA\|>.+<\|EOA\|>\naudio_sample2: <\|SOA\|>.+<\|EOA\|>$/.test(s)),
    ).toBe(true);
    expect(inputs.some((s) => /^text: [^\n]+\naudio prompt: <\|SOA\|>.+<\|EOA\|>$/.test(s))).toBe(true);
    expect(inputs.some((s) => s.startsWith('text: ') && !has(s))).toBe(true);
    expect(outputs.some((s) => s.startsWith('Generated speech is: <|SOA|>'))).toBe(true);
    expect(outputs.some((s) => s.startsWith('audio: <|SOA|>'))).toBe(true);
    expect(records.some((r) => has(r.rec.input) && has(r.rec.output))).toBe(true);
  });

  it('shares clips across tasks of the same dataset, never across splits', () => {
    const tasksOf = new Map<string, Set<string>>();
    const splitsOf = new Map<string, Set<string>>();
    for (const { rec } of records) {
      for (const m of `${rec.input}\n${rec.output}`.matchAll(AUDIO_REF)) {
        const id = m[1] ?? '';
        tasksOf.set(id, (tasksOf.get(id) ?? new Set()).add(rec.task_type.minor[0] ?? ''));
        splitsOf.set(id, (splitsOf.get(id) ?? new Set()).add(rec.split[0] ?? ''));
      }
    }
    const shared = [...tasksOf.values()].filter((s) => s.size >= 2).length;
    expect(shared).toBe(summary.sharedClips);
    expect(shared / tasksOf.size).toBeGreaterThan(0.3);
    expect(shared / tasksOf.size).toBeLessThan(0.6);
    expect([...tasksOf.values()].some((s) => s.size >= 3)).toBe(true);
    for (const s of splitsOf.values()) expect(s.size).toBe(1);
  });

  it('marks a few tasks in every domain unseen', () => {
    const unseen = new Set(
      records
        .filter((r) => r.rec.task_type.unseen)
        .map((r) => `${r.rec.domain}/${r.rec.task_type.major[0]}/${r.rec.task_type.minor[0]}`),
    );
    expect([...unseen].sort()).toEqual([...SAMPLE_UNSEEN_TASKS].sort());
    expect(unseen.size).toBeGreaterThanOrEqual(4);
    expect(new Set([...unseen].map((p) => p.split('/')[0]))).toEqual(new Set(DOMAINS));
    const bad = records.filter(
      ({ rec }) =>
        rec.task_type.unseen !== unseen.has(`${rec.domain}/${rec.task_type.major[0]}/${rec.task_type.minor[0]}`),
    );
    expect(bad).toEqual([]);
  });

  it('writes gzip and plain shards of at most SHARD_MAX_RECORDS records', () => {
    const perFile = new Map<string, number>();
    for (const { file } of records) perFile.set(file, (perFile.get(file) ?? 0) + 1);
    const files = [...perFile.keys()];
    expect(files.filter((f) => f.endsWith('.jsonl.gz')).length).toBeGreaterThan(10);
    expect(files.filter((f) => f.endsWith('.jsonl')).length).toBeGreaterThan(10);
    expect(summary.files.jsonl + summary.files.jsonlGz).toBe(files.length);
    for (const n of perFile.values()) expect(n).toBeLessThanOrEqual(SHARD_MAX_RECORDS);
    const dirsWithManyShards = new Set(files.map((f) => f.replace(/_\d{3}\.jsonl(\.gz)?$/, '')));
    expect(dirsWithManyShards.size).toBeLessThan(files.length);
  });

  it('contains English and Chinese text', () => {
    const zhOut = records.filter((r) => HAN.test(r.rec.output));
    expect(zhOut.some((r) => r.rec.task_type.minor[0] === 'ASR')).toBe(true);
    expect(records.some((r) => HAN.test(r.rec.instruction))).toBe(true);
    expect(records.some((r) => HAN.test(r.rec.input))).toBe(true);
    expect(records.filter((r) => /^[\x20-\x7e]+$/.test(r.rec.instruction)).length).toBeGreaterThan(
      records.length * 0.8,
    );
  });

  it('is the bundled sample corpus, with pinned bytes', () => {
    // The tree `npm start`, the benchmarks and the stream digests are built from: the generator may
    // change how it writes (it streams shard by shard), never what it writes.
    const tree = createHash('sha256');
    for (const [f, h] of treeDigest(root)) tree.update(`${f}\0${h}\n`);
    expect(tree.digest('hex')).toBe('3906f4bc6dda852a02442f224981a365aa051988c559b172e9eb20faaf73f064');
  });

  it('refuses to overwrite an existing corpus unless asked', async () => {
    await expect(writeSampleCorpus(root, { records: 100, seed: 0 })).rejects.toThrow(/already exists/);
  });
});

describe('sample corpus determinism', () => {
  it('gives byte-identical trees for the same seed and different ones for another seed', async () => {
    const [a, b, c] = [tempDir('a'), tempDir('b'), tempDir('c')];
    const sa = await writeSampleCorpus(a, { records: 3000, seed: 7 });
    const sb = await writeSampleCorpus(b, { records: 3000, seed: 7 });
    await writeSampleCorpus(c, { records: 3000, seed: 8 });
    expect({ ...sb, dir: '' }).toEqual({ ...sa, dir: '' });
    const [da, db, dc] = [treeDigest(a), treeDigest(b), treeDigest(c)];
    expect([...db.keys()]).toEqual([...da.keys()]);
    for (const [f, h] of da) expect(db.get(f), f).toBe(h);
    expect([...da.keys()].some((f) => f.endsWith('.jsonl.gz'))).toBe(true);
    const differing = [...da].filter(([f, h]) => dc.get(f) !== h).length;
    expect(differing).toBeGreaterThan(da.size / 2);
  });

  it('still writes every task with train/dev/test at tiny sizes', async () => {
    const d = tempDir('tiny');
    const s = await writeSampleCorpus(d, { records: 0, seed: 1 });
    expect(s.tasks).toHaveLength(80);
    expect(s.records).toBe(80 * 12);
    for (const t of s.tasks) expect([t.train, t.dev, t.test]).toEqual([8, 2, 2]);
    expect(existsSync(join(d, 'scp_files', 'speech', '13_LibriTTS-R.scp'))).toBe(true);
  });
});

describe('encodeNpy', () => {
  it('writes what numpy.save writes', () => {
    const buf = encodeNpy(Int32Array.from([0, 1, 2]), [3], '<i2');
    const header = "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }";
    expect(buf.subarray(0, 8).toString('latin1')).toBe('\x93NUMPY\x01\x00');
    expect(buf.readUInt16LE(8)).toBe(118);
    expect(buf.toString('latin1', 10, 128)).toBe(`${header}${' '.repeat(118 - header.length - 1)}\n`);
    expect([...buf.subarray(128)]).toEqual([0, 0, 1, 0, 2, 0]);
    const two = readNpy(encodeNpy([1, 2, 3, 4, 5, 6], [2, 3], '<i8'));
    expect(two).toEqual({ descr: '<i8', shape: [2, 3], codes: [1, 2, 3, 4, 5, 6] });
    expect(() => encodeNpy([70000], [1], '<u2')).toThrow(/does not fit/);
    expect(() => encodeNpy([1, 2], [3], '<i4')).toThrow();
  });
});
