import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IndexReader } from '../../src/index/index-reader.js';
import { shardPath, writeClip, writeShard } from '../helpers/tiny-corpus.js';
import { CLI } from '../helpers/cli.js';

/**
 * A write that fails part-way (ENOSPC, EFBIG) must leave no `*.tmp` behind and must name the file.
 * The fault is real: the indexer runs under a file size limit (`ulimit -f`, with SIGXFSZ ignored
 * so the write fails with EFBIG rather than killing the process) that the copied tokenizer.json
 * (11 MB) fits in but the one large shard (about 19 MB of audio tokens, stored in 2 bytes each) does not.
 */
const base = mkdtempSync(join(tmpdir(), 'flanstream-writefail-'));
const corpus = join(base, 'corpus');
const LIMIT_KB = 16 * 1024;
afterAll(() => rmSync(base, { recursive: true, force: true }));
beforeAll(() => {
  const clip = writeClip(corpus, '01_Big', 'long', 8, 600_000);
  writeShard(
    corpus,
    shardPath('01_Big', 'part-0.jsonl'),
    [0, 1].map((k) => ({ uuid: `big-${k}`, input: `<|SOA|>${clip}<|EOA|> clip ${k}` })),
  );
  for (let s = 0; s < 3; s++)
    writeShard(
      corpus,
      shardPath('02_Small', `part-${s}.jsonl`),
      [0, 1, 2].map((k) => ({ uuid: `small-${s}-${k}` })),
    );
});

function limitedIndex(out: string, workers: number, limitKb?: number): { status: number | null; stderr: string } {
  const limit = limitKb === undefined ? '' : `trap '' XFSZ; ulimit -f ${limitKb};`;
  const r = spawnSync(
    'bash',
    [
      '-c',
      `${limit} exec "$0" "$@"`,
      process.execPath,
      CLI,
      'index',
      corpus,
      '--out',
      out,
      '--workers',
      String(workers),
    ],
    { encoding: 'utf8', timeout: 180_000 },
  );
  return { status: r.status, stderr: r.stderr };
}

const temporaries = (out: string): string[] =>
  [out, join(out, 'shards')].flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.tmp')) : []));

describe('a write failing for lack of space', () => {
  it.each([1, 2])('leaves no temporaries and names the file (%i worker(s)); the next run completes', (workers) => {
    const out = join(base, `out-${workers}`);
    const r = limitedIndex(out, workers, LIMIT_KB);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /flanstream: .*shards\/[0-9a-f]+\.bin: cannot be written \(EFBIG: .*\); the index was left as it was/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /); // a clear message, not a stack trace
    expect(temporaries(out)).toEqual([]);
    expect(existsSync(join(out, 'manifest.msgpack'))).toBe(false);

    const ok = limitedIndex(out, workers);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const reader = IndexReader.open(out);
    reader.verifyFiles();
    expect(reader.manifest.records).toBe(11);
    reader.close();
    expect(temporaries(out)).toEqual([]);
  });
});
