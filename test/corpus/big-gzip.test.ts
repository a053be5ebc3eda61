import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readShardLines } from '../../src/corpus/shard-lines.js';
import { recordLine } from '../helpers/tiny-corpus.js';

/**
 * A gzip member that decompresses past 2 GiB, as a real file (a few MB on disk: the long line is
 * one repeated byte). Before streaming, Buffer.indexOf returned -1 past 2^31 and every record
 * after that point was lost as one line_too_long. Now the over-long line is quarantined with its
 * true length and reading resumes at the next newline.
 */
const dir = mkdtempSync(join(tmpdir(), 'flanstream-biggz-'));
const file = join(dir, 'huge.jsonl.gz');
const LONG = 2 ** 31 + 12_345;
const head = recordLine({ uuid: 'before' }) + '\n';
const tail = ['after-0', 'after-1', 'after-2'].map((u) => recordLine({ uuid: u }) + '\n').join('');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  async function* body(): AsyncGenerator<Buffer> {
    yield Buffer.from(head);
    const block = Buffer.alloc(8 << 20, 0x78);
    for (let left = LONG; left > 0; left -= block.length) yield left >= block.length ? block : block.subarray(0, left);
    yield Buffer.from('\n' + tail);
  }
  await pipeline(Readable.from(body()), createGzip({ level: 1 }), createWriteStream(file));
}, 300_000);

describe('a gzip shard decompressing past 2 GiB', () => {
  it('keeps every record after the 2 GiB point and quarantines the long line alone', async () => {
    expect(statSync(file).size).toBeLessThan(64 << 20);
    const r = await readShardLines(file, 'metadata/x/huge.jsonl.gz', 1 << 20);
    expect(r.lines.map((l) => [l.line, (JSON.parse(l.text) as { uuid: string }).uuid])).toEqual([
      [1, 'before'],
      [3, 'after-0'],
      [4, 'after-1'],
      [5, 'after-2'],
    ]);
    expect(r.issues.map((i) => [i.line, i.reason, i.detail])).toEqual([
      [2, 'line_too_long', `line of ${LONG} bytes exceeds the ${1 << 20}-byte limit`],
    ]);
    expect(r.bytes).toBe(head.length + LONG + 1 + tail.length);
  }, 300_000);
});
