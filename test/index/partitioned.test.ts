import { spawn } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { findShards } from '../../src/index/find-shards.js';
import { writeAudioGroups } from '../../src/index/audio-groups.js';
import { buildPart, mergeParts } from '../../src/index/build-part.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { MANIFEST_FILE } from '../../src/index/format.js';
import { PARTS_DIR, partFile } from '../../src/index/part-file.js';
import { assignParts, parsePart } from '../../src/index/partition.js';
import { keepDatasets } from '../helpers/fault-injection.js';
import { indexTree as tree } from '../helpers/index-tree.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { CLI } from '../helpers/cli.js';

const base = mkdtempSync(join(tmpdir(), 'flanstream-parts-'));
const corpus = join(base, 'corpus');
const single = join(base, 'single');
afterAll(() => rmSync(base, { recursive: true, force: true }));
beforeAll(async () => {
  await writeSampleCorpus(corpus, { records: 400, seed: 5 });
  keepDatasets(corpus, ['07_ESD', '01_CommonVoice', '14_VCTK', '02_Emilia', '20_MTG-Jamendo', '39_AudioSet']);
  await buildIndex({ corpus, out: single, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
});

/** `flanstream index` as its own process; `killAfterShards` SIGKILLs it once it has written that many shard files. */
function cli(
  args: string[],
  killAfterShards?: number,
): Promise<{ code: number | null; killed: boolean; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'index', ...args, '--audio-root', SAMPLE_AUDIO_ROOT], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const out = args[args.indexOf('--out') + 1]!;
  const shards = (): number =>
    existsSync(join(out, 'shards')) ? readdirSync(join(out, 'shards')).filter((f) => f.endsWith('.bin')).length : 0;
  const before = shards();
  let killed = false;
  const timer =
    killAfterShards === undefined
      ? undefined
      : setInterval(() => {
          if (!killed && shards() - before >= killAfterShards) killed = child.kill('SIGKILL');
        }, 3);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ code, killed: killed && code === null, stderr });
    });
  });
}

describe('part assignment', () => {
  it('gives every file to exactly one part, balanced by bytes, the same way every time', () => {
    const files = Array.from({ length: 57 }, (_, i) => ({
      source: `f${String(i).padStart(2, '0')}`,
      bytes: 1 + ((i * 7919) % 1000),
    }));
    const a = assignParts(files, 5);
    expect(assignParts([...files].reverse(), 5)).toEqual([...a].reverse());
    const load = [0, 0, 0, 0, 0];
    a.forEach((p, i) => (load[p]! += files[i]!.bytes));
    expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(Math.max(...files.map((f) => f.bytes)));
    expect(load.reduce((x, y) => x + y)).toBe(files.reduce((n, f) => n + f.bytes, 0));
    expect(assignParts(files, 1).every((p) => p === 0)).toBe(true);
  });

  it('parses I/N from 0 and refuses what is not a part', () => {
    expect(parsePart('3/8')).toEqual({ index: 3, count: 8 });
    for (const bad of ['8/8', '1/0', '-1/4', 'x/4', '2']) expect(() => parsePart(bad)).toThrow(/--part: expected I\/N/);
  });
});

describe('a partitioned build (separate processes)', () => {
  it('in shuffled order, run concurrently, with one part killed and rerun, equals the one-process build byte for byte', async () => {
    const out = join(base, 'parts4');
    const N = 4;
    const order = [2, 0, 3, 1];
    // Part 3 is killed after its first shard; the others run at the same time, against one --out.
    const runs = await Promise.all(
      order.map((i) => cli([corpus, '--out', out, '--workers', '1', '--part', `${i}/${N}`], i === 3 ? 1 : undefined)),
    );
    expect(runs.map((r, k) => (order[k] === 3 ? r.killed : r.code === 0))).toEqual([true, true, true, true]);
    expect(existsSync(join(out, partFile({ index: 3, count: N })))).toBe(false);

    const early = await cli([corpus, '--out', out, '--merge']);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/cannot merge: 1 of 4 parts missing \(3\/4\)/);
    expect(existsSync(join(out, MANIFEST_FILE))).toBe(false);

    expect((await cli([corpus, '--out', out, '--workers', '1', '--part', `3/${N}`])).code).toBe(0);
    const merged = await cli([corpus, '--out', out, '--merge']);
    expect(merged.stderr).toBe('');
    expect(merged.code).toBe(0);
    // Same manifest (so same fingerprint), same shard files, same groups, no parts/ or temporaries left.
    expect(tree(out)).toEqual(tree(single));
  });
});

describe('cross-shard step in bounded memory', () => {
  it('audio groups sorted in many small key-range buckets (spilled to files) are the same bytes as in one', () => {
    const r = IndexReader.open(single);
    try {
      const rowsOf = (s: number): Int32Array => {
        const b = r.section(s, 'rows');
        return new Int32Array(b.buffer, b.byteOffset, b.length / 4);
      };
      const dir = join(base, 'groups');
      mkdirSync(dir);
      // 7 quads per bucket: hundreds of buckets, each through its own temporary file.
      const small = writeAudioGroups(dir, r.manifest.shards, rowsOf, 7);
      expect(small).toEqual(r.manifest.audioGroups);
      expect(small.entries).toBeGreaterThan(10);
      expect(readFileSync(join(dir, small.file)).equals(readFileSync(join(single, r.manifest.audioGroups.file)))).toBe(
        true,
      );
      expect(readdirSync(dir)).toEqual([small.file]);
    } finally {
      r.close();
    }
  });
});

describe('the merge refuses parts it cannot trust', () => {
  const parts = async (out: string, c = corpus, n = 2): Promise<void> => {
    for (let i = 0; i < n; i++)
      await buildPart({ corpus: c, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT], part: { index: i, count: n } });
  };

  it('a part built with another tokenizer setting', async () => {
    const out = join(base, 'settings');
    await parts(out);
    await expect(mergeParts({ corpus, out, codebookSize: 2048, audioRoots: [SAMPLE_AUDIO_ROOT] })).rejects.toThrow(
      /part 0\/2 was built with other settings .*merge with the parts' --tokenizer\/--codebook-size/,
    );
    expect(existsSync(join(out, MANIFEST_FILE))).toBe(false);
    // The refused merge changed nothing: merged with the parts' settings it is the one-process index.
    await mergeParts({ corpus, out, audioRoots: [SAMPLE_AUDIO_ROOT] });
    expect(existsSync(join(out, PARTS_DIR))).toBe(false);
    expect(tree(out)).toEqual(tree(single));
  });

  it('a part whose JSONL file changed after it was built (stale)', async () => {
    const c = join(base, 'corpus-stale');
    cpSync(corpus, c, { recursive: true });
    const out = join(base, 'stale');
    await parts(out, c);
    const [victim] = findShards(c);
    const st = statSync(join(c, victim!));
    // Same size (so the assignment stands), new content: only the stat of the part's own file tells.
    writeFileSync(join(c, victim!), readFileSync(join(c, victim!)));
    expect(statSync(join(c, victim!)).size).toBe(st.size);
    await expect(mergeParts({ corpus: c, out, audioRoots: [SAMPLE_AUDIO_ROOT] })).rejects.toThrow(
      new RegExp(`part \\d/2 is stale: ${victim!.replace(/[.]/g, '\\.')} changed since it was built; rerun`),
    );
    appendFileSync(join(c, victim!), '\n');
    await expect(mergeParts({ corpus: c, out, audioRoots: [SAMPLE_AUDIO_ROOT] })).rejects.toThrow(
      /part 0\/2 is stale: the corpus's JSONL files were added, removed or resized/,
    );
  });

  it('parts of another corpus, of two different N, damaged, or with a shard file gone', async () => {
    const other = join(base, 'corpus-other');
    await writeSampleCorpus(other, { records: 100, seed: 6 });
    const out = join(base, 'mixed');
    await parts(out, other);
    await expect(mergeParts({ corpus, out, audioRoots: [SAMPLE_AUDIO_ROOT] })).rejects.toThrow(
      /part 0\/2 is from another corpus \(.*corpus-other, not .*corpus\); rebuild every part/,
    );

    await buildPart({ corpus: other, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT], part: { index: 0, count: 3 } });
    await expect(mergeParts({ corpus: other, out, audioRoots: [SAMPLE_AUDIO_ROOT] })).rejects.toThrow(
      /parts\/ holds parts of 2 and 3-way builds/,
    );
    rmSync(join(out, partFile({ index: 0, count: 3 })));

    writeFileSync(join(out, partFile({ index: 1, count: 2 })), 'not a part');
    await expect(mergeParts({ corpus: other, out, audioRoots: [SAMPLE_AUDIO_ROOT] })).rejects.toThrow(
      /part 1\/2 record is damaged or half-written; rerun .*--part 1\/2/,
    );
    await buildPart({ corpus: other, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT], part: { index: 1, count: 2 } });

    const shard = readdirSync(join(out, 'shards'))[0]!;
    rmSync(join(out, 'shards', shard));
    await expect(mergeParts({ corpus: other, out, audioRoots: [SAMPLE_AUDIO_ROOT] })).rejects.toThrow(
      new RegExp(`part \\d/2 is incomplete: its shard file shards/${shard} is missing`),
    );
  });

  it('no parts at all', async () => {
    await expect(mergeParts({ corpus, out: join(base, 'empty'), audioRoots: [SAMPLE_AUDIO_ROOT] })).rejects.toThrow(
      /no parts to merge/,
    );
  });
});
