import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../../src/index/build-index.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { openCore, take, trainSpec } from '../helpers/core-streams.js';
import { bareConfig, recordLine, shardPath, writeShard } from '../helpers/tiny-corpus.js';

/**
 * The quarantine report is streamed to its own file; the manifest keeps counts per reason. A shard
 * of 200,000 bad lines once made a manifest of about 90 MB (and 1.25M crashed the indexer with
 * "Invalid string length"); the manifest must stay the size of a clean corpus's.
 */
const BAD = 200_000;
const base = mkdtempSync(join(tmpdir(), 'flanstream-qfile-'));
const corpus = join(base, 'corpus');
const out = join(base, 'index');
const bad = shardPath('01_Mess', 'part-1.jsonl');
afterAll(() => rmSync(base, { recursive: true, force: true }));

beforeAll(async () => {
  writeShard(
    corpus,
    shardPath('01_Mess', 'part-0.jsonl'),
    Array.from({ length: 20 }, (_, k) => ({ uuid: `ok-${k}` })),
  );
  writeShard(corpus, bad, [{ uuid: 'first' }]);
  appendFileSync(join(corpus, bad), '{"not json\n'.repeat(BAD) + recordLine({ uuid: 'last' }) + '\n');
  await buildIndex({ corpus, out, workers: 1 });
}, 300_000);

const report = (): string[] =>
  readFileSync(join(out, 'quarantine.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '');

describe('quarantine report in its own file', () => {
  it('the manifest holds counts per reason only and stays small', () => {
    expect(statSync(join(out, 'manifest.msgpack')).size).toBeLessThan(64 << 10);
    const r = IndexReader.open(out);
    try {
      expect(r.manifest.quarantined).toBe(BAD);
      expect(r.manifest.quarantineByReason).toEqual({ invalid_json: BAD });
      expect(r.manifest.records).toBe(22);
      expect(JSON.stringify(r.manifest).length).toBeLessThan(64 << 10);
    } finally {
      r.close();
    }
  });

  it('quarantine.jsonl lists every entry, in line order, naming file, line and reason', () => {
    const lines = report();
    expect(lines).toHaveLength(BAD);
    const first = JSON.parse(lines[0]!) as { file: string; line: number; reason: string };
    const last = JSON.parse(lines[BAD - 1]!) as { file: string; line: number; reason: string };
    expect([first.file, first.line, first.reason]).toEqual([bad, 2, 'invalid_json']);
    expect([last.file, last.line, last.reason]).toEqual([bad, BAD + 1, 'invalid_json']);
  });

  it('a server opens it and serves; a rebuild reusing the shards writes the same report', async () => {
    const core = await openCore(out, bareConfig(join(base, 'config')));
    expect(take(core.open({ spec: trainSpec({ batchSize: 2, seqLen: 512 }) }), 3).batches).toHaveLength(3);
    core.catalog.reader.close();
    const before = readFileSync(join(out, 'quarantine.jsonl'));
    const again = await buildIndex({ corpus, out, workers: 1 });
    expect(again.shardsReused).toBe(2);
    expect(readFileSync(join(out, 'quarantine.jsonl')).equals(before)).toBe(true);
  });
});
