import {
  appendFileSync,
  cpSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  mkdtempSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../../src/sample/npy-writer.js';
import { parseNpy } from '../../src/corpus/npy.js';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex, type BuildSummary } from '../../src/index/build-index.js';
import type { ShardDeps } from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { readManifest } from '../../src/index/manifest-io.js';
import { readShardDeps } from '../../src/index/shard-builder.js';
import { keepDatasets } from '../helpers/fault-injection.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';

const base = mkdtempSync(join(tmpdir(), 'flanstream-incr-'));
const template = join(base, 'template');
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A sample corpus cut down to three datasets (about 20 shards), so each build stays small. */
beforeAll(async () => {
  await writeSampleCorpus(template, { records: 400, seed: 5 });
  keepDatasets(template, ['07_ESD', '01_CommonVoice', '39_AudioSet']);
});

let n = 0;
function copy(): { corpus: string; out: string } {
  const dir = join(base, `run${n++}`);
  cpSync(template, join(dir, 'corpus'), { recursive: true });
  return { corpus: join(dir, 'corpus'), out: join(dir, 'index') };
}

const shardFiles = (out: string): string[] => readdirSync(join(out, 'shards')).sort();
const build = (corpus: string, out: string, workers = 1): Promise<BuildSummary> =>
  buildIndex({ corpus, out, workers, audioRoots: [SAMPLE_AUDIO_ROOT] });

function readLines(file: string): string[] {
  const raw = readFileSync(file);
  return (file.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8').trimEnd().split('\n');
}
function writeLines(file: string, lines: string[]): void {
  const body = Buffer.from(`${lines.join('\n')}\n`);
  writeFileSync(file, file.endsWith('.gz') ? gzipSync(body) : body);
}

/** What each shard of the current index was built from, by source. */
function depsBySource(out: string): Map<string, ShardDeps> {
  return new Map(readManifest(out).shards.map((s) => [s.source, readShardDeps(out, s)!]));
}
/** The shards of the current index that depend on a given corpus file. */
function dependents(out: string, file: string): string[] {
  return [...depsBySource(out)]
    .filter(([, d]) => d.npy.some(([f]) => f === file) || d.scp.some(([f]) => f === file))
    .map(([s]) => s);
}
const someNpy = (out: string): string => [...depsBySource(out).values()].find((d) => d.npy.length > 0)!.npy[0]![0];

describe('incremental index', () => {
  let corpus: string;
  let out: string;
  let first: BuildSummary;
  let total: number;
  beforeAll(async () => {
    ({ corpus, out } = copy());
    first = await build(corpus, out);
    total = first.manifest.shards.length;
  });
  const shardOf = (pred: (source: string) => boolean): string => {
    const s = first.manifest.shards.find((sh) => pred(sh.source));
    if (!s) throw new Error('no such shard');
    return s.source;
  };
  const rebuilt = (before: BuildSummary, after: BuildSummary): string[] => {
    const old = new Set(before.manifest.shards.map((s) => s.key));
    return after.manifest.shards
      .filter((s) => !old.has(s.key))
      .map((s) => s.source)
      .sort();
  };

  it('builds every shard the first time', () => {
    expect(total).toBeGreaterThan(10);
    expect([first.shardsBuilt, first.shardsReused]).toEqual([total, 0]);
    expect(shardFiles(out)).toHaveLength(total);
  });

  it('reuses everything when nothing changed', async () => {
    const again = await build(corpus, out);
    expect([again.shardsBuilt, again.shardsReused]).toEqual([0, total]);
    expect(again.manifest.fingerprint).toBe(first.manifest.fingerprint);
  });

  it('reuses a shard whose file was rewritten with the same bytes (content, not mtime, decides)', async () => {
    const src = join(
      corpus,
      shardOf((s) => s.endsWith('.gz')),
    );
    writeFileSync(src, readFileSync(src));
    utimesSync(src, new Date(), new Date(Date.now() + 5000));
    const again = await build(corpus, out);
    expect(again.shardsBuilt).toBe(0);
    expect(again.manifest.fingerprint).toBe(first.manifest.fingerprint);
  });

  it('rebuilds only a modified shard, changes the fingerprint and drops the old shard file', async () => {
    const before = await build(corpus, out);
    const source = shardOf((s) => s.endsWith('.jsonl'));
    const lines = readLines(join(corpus, source));
    const rec = JSON.parse(lines[0]!) as { uuid: string; instruction: string };
    writeLines(join(corpus, source), [
      ...lines,
      JSON.stringify({ ...rec, uuid: 'added-1', instruction: `${rec.instruction} (again)` }),
    ]);
    const after = await build(corpus, out);
    expect([after.shardsBuilt, after.shardsReused]).toEqual([1, total - 1]);
    expect(rebuilt(before, after)).toEqual([source]);
    expect(after.manifest.fingerprint).not.toBe(before.manifest.fingerprint);
    expect(after.manifest.records).toBe(before.manifest.records + 1);
    expect(shardFiles(out)).toHaveLength(total);
    const r = IndexReader.open(out);
    const i = r.manifest.shards.findIndex((s) => s.source === source);
    expect(r.uuid(i, lines.length)).toBe('added-1');
    r.close();
  });

  it('rebuilds the shards using a touched .npy but keeps the fingerprint when its content is the same', async () => {
    const before = await build(corpus, out);
    const npy = someNpy(out);
    const users = dependents(out, npy);
    utimesSync(join(corpus, npy), new Date(), new Date(Date.now() + 10_000));
    const after = await build(corpus, out);
    expect(after.shardsBuilt).toBe(users.length);
    expect(after.shardsReused).toBe(total - users.length);
    expect(after.manifest.fingerprint).toBe(before.manifest.fingerprint);
  });

  it('rebuilds the shards using a .npy whose codes changed, and changes the fingerprint', async () => {
    const before = await build(corpus, out);
    const npy = someNpy(out);
    const users = dependents(out, npy);
    const arr = parseNpy(readFileSync(join(corpus, npy)));
    const shape = arr.codebooks === 1 ? [arr.frames] : [arr.codebooks, arr.frames];
    writeFileSync(
      join(corpus, npy),
      encodeNpy(
        Array.from(arr.codes, (c) => (c + 1) % 1024),
        shape,
        arr.dtype,
      ),
    );
    const after = await build(corpus, out);
    expect(rebuilt(before, after)).toEqual(users.sort());
    expect(after.manifest.fingerprint).not.toBe(before.manifest.fingerprint);
  });

  it('rebuilds the shards whose scp mapping changed, even to a path of the same length', async () => {
    await build(corpus, out);
    const [scp] = [...depsBySource(out).values()].find((d) => d.scp.length > 0)!.scp[0]!;
    const users = dependents(out, scp);
    const lines = readFileSync(join(corpus, scp), 'utf8').trimEnd().split('\n');
    // Swap the paths of the first two ids: same bytes, different mapping.
    const [a, b] = [lines[0]!.split(' '), lines[1]!.split(' ')];
    lines[0] = `${a[0]} ${b[1]}`;
    lines[1] = `${b[0]} ${a[1]}`;
    writeFileSync(join(corpus, scp), `${lines.join('\n')}\n`);
    const after = await build(corpus, out);
    expect(users.length).toBeGreaterThan(0);
    expect([after.shardsBuilt, after.shardsReused]).toEqual([users.length, total - users.length]);
  });

  it('picks up an audio file that was missing before', async () => {
    const source = shardOf((s) => s.includes('/07_ESD/'));
    const lines = readLines(join(corpus, source));
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    appendFileSync(join(corpus, 'scp_files/speech/07_ESD.scp'), '07_ESD_late speech/07_ESD/late/late.wav\n');
    writeLines(join(corpus, source), [
      ...lines,
      JSON.stringify({ ...rec, uuid: 'late-1', input: '<|SOA|>07_ESD_late<|EOA|>' }),
    ]);
    const missing = await build(corpus, out);
    expect(missing.manifest.quarantineByReason).toEqual({ npy_missing: 1 });
    cpSync(
      join(corpus, depsBySource(out).get(source)!.npy[0]![0]),
      join(corpus, 'audio_tokens/speech/07_ESD/late/late.npy'),
    );
    const fixed = await build(corpus, out);
    expect(fixed.manifest.quarantined).toBe(0);
    expect(fixed.manifest.records).toBe(missing.manifest.records + 1);
  });

  it('rebuilds a shard whose build record (deps section) is damaged, and only that one', async () => {
    const before = await build(corpus, out);
    const shard = before.manifest.shards[1]!;
    const file = join(out, shard.file);
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(shard.sections.deps[0] + 1) ^ 0x20, shard.sections.deps[0] + 1);
    writeFileSync(file, bytes);
    const after = await build(corpus, out);
    expect([after.shardsBuilt, after.shardsReused]).toEqual([1, total - 1]);
    expect(after.manifest.fingerprint).toBe(before.manifest.fingerprint);
  });

  it('keeps the manifest small: build records live in the shard files', () => {
    const m = readManifest(out);
    expect(m.shards.every((s) => !('deps' in s))).toBe(true);
    expect(statSync(join(out, 'manifest.msgpack')).size).toBeLessThan(m.shards.length * 4096 + 64 * 1024);
  });

  it('rebuilds everything when an index option changes', async () => {
    const other = await buildIndex({ corpus, out, workers: 1, codebookSize: 2048, audioRoots: [SAMPLE_AUDIO_ROOT] });
    expect(other.shardsBuilt).toBe(total);
    expect(other.manifest.vocab.codebookSize).toBe(2048);
  });

  it('drops a removed shard from the manifest and the shards directory', async () => {
    const before = await build(corpus, out);
    const source = shardOf((s) => s.includes('/39_AudioSet/'));
    const removed = before.manifest.shards.find((s) => s.source === source)!;
    unlinkSync(join(corpus, source));
    const after = await build(corpus, out);
    expect([after.shardsBuilt, after.manifest.shards.length]).toEqual([0, total - 1]);
    expect(after.manifest.records).toBe(before.manifest.records - removed.records);
    expect(shardFiles(out)).toHaveLength(total - 1);
  });
});

describe('fingerprint', () => {
  it('is the same for the same content: from scratch, with 1 or 2 workers, and for a copy of the corpus', async () => {
    const a = copy();
    const one = await build(a.corpus, a.out, 1);
    const two = await build(a.corpus, `${a.out}-w2`, 2);
    const b = copy(); // copied files get new mtimes
    const copied = await build(b.corpus, b.out, 1);
    expect(two.manifest.fingerprint).toBe(one.manifest.fingerprint);
    expect(copied.manifest.fingerprint).toBe(one.manifest.fingerprint);
    expect(statSync(join(b.corpus, one.manifest.shards[0]!.source)).mtimeMs).not.toBe(
      statSync(join(a.corpus, one.manifest.shards[0]!.source)).mtimeMs,
    );
  });
});
