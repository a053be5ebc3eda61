import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuarantineEntry } from '../../src/corpus/quarantine.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { recordLine, shardPath, writeClip, writeShard } from '../helpers/tiny-corpus.js';
import { CLI } from '../helpers/cli.js';

/**
 * Files that are not what the layout expects. Real FIFOs (mkfifo) where a shard and where an .npy
 * is expected: read the ordinary way, either blocks the indexer forever. A directory where a shard
 * is expected, and files named like shards outside the layout, which must be reported as skipped.
 */
const base = mkdtempSync(join(tmpdir(), 'flanstream-oddfiles-'));
const corpus = join(base, 'corpus');
const out = join(base, 'index');
afterAll(() => rmSync(base, { recursive: true, force: true }));

const fifo = (rel: string): void => {
  mkdirSync(dirname(join(corpus, rel)), { recursive: true });
  expect(spawnSync('mkfifo', [join(corpus, rel)]).status).toBe(0);
};

let run: { status: number | null; stdout: string; stderr: string };
beforeAll(() => {
  const clip = writeClip(corpus, '01_Clips', 'good', 2, 10);
  writeClip(corpus, '01_Clips', 'piped', 2, 10);
  // The scp names piped.wav; its tokens are a FIFO, not a file.
  rmSync(join(corpus, 'audio_tokens/speech/01_Clips/piped.npy'));
  fifo('audio_tokens/speech/01_Clips/piped.npy');
  writeShard(corpus, shardPath('01_Clips', 'part-0.jsonl'), [
    { uuid: 'good-0', input: `<|SOA|>${clip}<|EOA|>` },
    { uuid: 'piped-0', input: '<|SOA|>01_Clips_piped<|EOA|>' },
    { uuid: 'text-0' },
  ]);
  fifo(shardPath('01_Clips', 'part-1.jsonl'));
  mkdirSync(join(corpus, shardPath('01_Clips', 'folder.jsonl')), { recursive: true });
  writeFileSync(join(corpus, shardPath('01_Clips', 'part-2.JSONL')), recordLine({ uuid: 'upper' }) + '\n');
  writeFileSync(
    join(corpus, 'metadata/speech/understanding/train/01_Clips/stray.jsonl'),
    recordLine({ uuid: 'stray' }) + '\n',
  );
  const r = spawnSync(process.execPath, [CLI, 'index', corpus, '--out', out], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  run = { status: r.status, stdout: r.stdout, stderr: r.stderr };
}, 150_000);

describe('non-regular files and files outside the layout', () => {
  it('indexes without hanging; only the regular records are kept', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const r = IndexReader.open(out);
    const uuids = r.manifest.shards.flatMap((s, i) => Array.from({ length: s.records }, (_, row) => r.uuid(i, row)));
    r.close();
    expect(uuids.sort()).toEqual(['good-0', 'text-0']);
  });

  it('quarantines a FIFO shard and a record whose .npy is a FIFO, with the reason', () => {
    const q = readFileSync(join(out, 'quarantine.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as QuarantineEntry);
    expect(q.map((e) => [e.file, e.line, e.reason])).toEqual([
      [shardPath('01_Clips', 'part-0.jsonl'), 2, 'not_regular_file'],
      [shardPath('01_Clips', 'part-1.jsonl'), 0, 'not_regular_file'],
    ]);
    expect(q[0]!.detail).toBe(
      'audio_tokens/speech/01_Clips/piped.npy: a FIFO, not a regular file; only regular files are read',
    );
    expect(q[1]!.detail).toBe('a FIFO, not a regular file; only regular files are read');
  });

  it('lists files named like shards outside the layout as skipped, with why', () => {
    expect(run.stdout).toContain('skipped: 3 files named like shards outside the layout');
    expect(run.stdout).toContain(`${shardPath('01_Clips', 'folder.jsonl')}: a directory named like a shard`);
    expect(run.stdout).toContain(
      `${shardPath('01_Clips', 'part-2.JSONL')}: extension is not .jsonl or .jsonl.gz (names are case-sensitive)`,
    );
    expect(run.stdout).toContain(
      'metadata/speech/understanding/train/01_Clips/stray.jsonl: not at metadata/<domain>/<ug>/<split>/<dataset>/jsonl/<file>',
    );
  });
});
