import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { IndexCorruptError } from '../../src/errors.js';
import { buildIndex } from '../../src/index/build-index.js';
import { compileManifest } from '../../src/index/compile-manifest.js';
import { MANIFEST_FILE } from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { keepDatasets } from '../helpers/fault-injection.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { CLI } from '../helpers/cli.js';

const base = mkdtempSync(join(tmpdir(), 'flanstream-interrupt-'));
const corpus = join(base, 'corpus');
afterAll(() => rmSync(base, { recursive: true, force: true }));
let total: number;
beforeAll(async () => {
  await writeSampleCorpus(corpus, { records: 400, seed: 9 });
  keepDatasets(corpus, ['07_ESD', '01_CommonVoice', '14_VCTK', '02_Emilia', '20_MTG-Jamendo', '39_AudioSet']);
});

const binFiles = (out: string): string[] => {
  try {
    return readdirSync(join(out, 'shards')).filter((f) => f.endsWith('.bin'));
  } catch {
    return [];
  }
};

/**
 * Runs `flanstream index` in a child process and SIGKILLs it once `when` says so (checked every
 * few milliseconds against the shard files written so far). Resolves with how the child ended.
 */
function killDuring(
  out: string,
  args: string[],
  when: (newFiles: number, ms: number) => boolean,
): Promise<{ killed: boolean; code: number | null }> {
  const before = new Set(binFiles(out));
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [CLI, 'index', corpus, '--out', out, '--audio-root', SAMPLE_AUDIO_ROOT, ...args],
    { stdio: 'ignore' },
  );
  return new Promise((resolve) => {
    let killed = false;
    const timer = setInterval(() => {
      const fresh = binFiles(out).filter((f) => !before.has(f)).length;
      if (!killed && when(fresh, Date.now() - started)) {
        killed = child.kill('SIGKILL');
      }
    }, 3);
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ killed: killed && code === null, code });
    });
  });
}

/** Every byte the reader serves from every shard: the comparison baseline for "unchanged". */
function everything(out: string): { fingerprint: string; records: number; data: string[] } {
  const r = IndexReader.open(out);
  try {
    const data = r.manifest.shards.map((s, i) => {
      const tokens = new Int32Array(s.tokens);
      r.readTokens(i, 0, s.tokens, tokens, 0);
      return [r.section(i, 'rows'), r.section(i, 'spans'), r.section(i, 'strings'), tokens]
        .map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64'))
        .join('|');
    });
    r.audioGroups();
    return { fingerprint: r.fingerprint, records: r.manifest.records, data };
  } finally {
    r.close();
  }
}

function noLeftovers(out: string): void {
  const live = new Set(IndexReader.open(out).manifest.shards.map((s) => s.file.slice('shards/'.length)));
  expect(readdirSync(join(out, 'shards')).sort()).toEqual([...live].sort());
  expect(readdirSync(out).filter((f) => f.endsWith('.tmp') || f.startsWith('audio-groups'))).toEqual([
    IndexReader.open(out).manifest.audioGroups.file,
  ]);
}

describe('an index run killed before its first manifest', () => {
  it.each([
    ['during start-up', 1, (_n: number, ms: number) => ms >= 300],
    ['after the first shard', 1, (n: number) => n >= 1],
  ])('%s leaves no index a server would open; a re-run completes', async (_name, workers, when) => {
    const out = join(base, `fresh-${_name.replace(/\W+/g, '-')}`);
    const run = await killDuring(out, ['--workers', String(workers)], when);
    expect(run.killed).toBe(true);
    let err: unknown;
    try {
      IndexReader.open(out);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IndexCorruptError);
    expect(String(err)).toMatch(/no index here/);
    const done = await buildIndex({ corpus, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
    expect(done.shardsReused).toBe(0);
    expect(everything(out).records).toBe(done.manifest.records);
    noLeftovers(out);
  });
});

describe('an index run killed while replacing an existing index', () => {
  let out: string;
  let old: ReturnType<typeof everything>;
  let oldManifest: Buffer;
  beforeAll(async () => {
    out = join(base, 'existing');
    total = (await buildIndex({ corpus, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] })).manifest.shards.length;
    old = everything(out);
    oldManifest = readFileSync(join(out, MANIFEST_FILE));
  });

  // A different codebook size makes the run rebuild every shard: a long window to interrupt.
  it.each([
    ['after the first new shard', 1, (n: number) => n >= 1],
    ['half-way', 2, (n: number) => n >= total / 2],
    ['after the last shard, while the manifest is compiled', 1, (n: number) => n >= total],
  ])('%s leaves the old index open-able and unchanged; a re-run completes', async (_name, workers, when) => {
    const run = await killDuring(out, ['--workers', String(workers), '--codebook-size', '2048'], when);
    const manifest = readFileSync(join(out, MANIFEST_FILE));
    if (run.killed && manifest.equals(oldManifest)) {
      expect(everything(out)).toEqual(old);
    } else {
      // The kill came after the new manifest was in place: then it must be complete and valid.
      expect(IndexReader.open(out).manifest.vocab.codebookSize).toBe(2048);
      expect(everything(out).records).toBe(old.records);
    }
    const redo = await buildIndex({ corpus, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
    expect(everything(out)).toEqual(old);
    expect(redo.manifest.fingerprint).toBe(old.fingerprint);
    noLeftovers(out);
  });

  it('a run stopped between its audio-groups file and its manifest leaves the old groups intact', async () => {
    const m = IndexReader.open(out).manifest;
    // What compileManifest of a run over fewer shards writes before the manifest would be renamed in.
    const partial = compileManifest(
      out,
      m.shards.slice(1).map((s) => ({ ...s })),
      m.vocab,
      m.options,
      m.template,
    );
    expect(partial.audioGroups.file).not.toBe(m.audioGroups.file);
    expect(everything(out)).toEqual(old);
    await buildIndex({ corpus, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
    noLeftovers(out);
  });

  it('an index directory without manifest but with shard files is rebuilt from scratch', async () => {
    const copy = join(base, 'no-manifest');
    cpSync(out, copy, { recursive: true });
    rmSync(join(copy, MANIFEST_FILE));
    expect(existsSync(join(copy, 'shards'))).toBe(true);
    const redo = await buildIndex({ corpus, out: copy, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
    expect(redo.shardsReused).toBe(0);
    expect(everything(copy)).toEqual(old);
    noLeftovers(copy);
  });
});
