import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readShardLines } from '../../src/corpus/shard-lines.js';

const dir = mkdtempSync(join(tmpdir(), 'flanstream-lines-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Writes `data` to a fresh file (gzip-compressed for a .gz name) and reads it back. */
async function read(data: Buffer | string, ext = '.jsonl', maxLineBytes = 1 << 20) {
  const name = `f${n++}${ext}`;
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  writeFileSync(join(dir, name), ext.endsWith('.gz') ? gzipSync(bytes) : bytes);
  const r = await readShardLines(join(dir, name), `metadata/x/${name}`, maxLineBytes);
  return { ...r, texts: r.lines.map((l) => [l.line, l.text]), problems: r.issues.map((i) => [i.line, i.reason]) };
}

describe('readShardLines', () => {
  for (const ext of ['.jsonl', '.jsonl.gz']) {
    describe(ext, () => {
      it('splits lines, numbers them from 1 and counts decompressed bytes', async () => {
        const r = await read('{"a":1}\n{"b":2}\n', ext);
        expect(r.texts).toEqual([
          [1, '{"a":1}'],
          [2, '{"b":2}'],
        ]);
        expect(r.issues).toEqual([]);
        expect(r.bytes).toBe(16);
        expect(r.lines.every((l) => !l.unterminated)).toBe(true);
      });

      it('accepts a UTF-8 BOM and CRLF line endings', async () => {
        const r = await read('\ufeff{"a":1}\r\n{"b":"é中"}\r\n', ext);
        expect(r.texts).toEqual([
          [1, '{"a":1}'],
          [2, '{"b":"é中"}'],
        ]);
        expect(r.issues).toEqual([]);
      });

      it('skips blank lines but keeps counting them', async () => {
        const r = await read('\n{"a":1}\n   \n\r\n{"b":2}\n\n', ext);
        expect(r.texts).toEqual([
          [2, '{"a":1}'],
          [5, '{"b":2}'],
        ]);
        expect(r.issues).toEqual([]);
      });

      it('flags an unterminated last line', async () => {
        const r = await read('{"a":1}\n{"b":', ext);
        expect(r.lines.map((l) => [l.line, l.unterminated])).toEqual([
          [1, false],
          [2, true],
        ]);
      });

      it('quarantines NUL bytes, invalid UTF-8 and over-long lines, keeping the lines around them', async () => {
        const data = Buffer.concat([
          Buffer.from('{"ok":1}\n{"nul":"a'),
          Buffer.from([0]),
          Buffer.from('b"}\n'),
          Buffer.from('{"bad":"'),
          Buffer.from([0xff, 0xfe]),
          Buffer.from('"}\n'),
          Buffer.from(`{"long":"${'x'.repeat(200)}"}\n`),
          Buffer.from('{"ok":2}\n'),
        ]);
        const r = await read(data, ext, 100);
        expect(r.texts).toEqual([
          [1, '{"ok":1}'],
          [5, '{"ok":2}'],
        ]);
        expect(r.problems).toEqual([
          [2, 'nul_byte'],
          [3, 'invalid_utf8'],
          [4, 'line_too_long'],
        ]);
        expect(r.issues.every((i) => i.file.endsWith(ext) && i.detail.length > 0)).toBe(true);
      });

      it('reports an empty file', async () => {
        const r = await read('', ext);
        expect(r.problems).toEqual([[0, 'empty_file']]);
        expect(r.lines).toEqual([]);
      });
    });
  }

  it.each([
    ['an overlong encoding', [0xc0, 0xaf]],
    ['a UTF-16 surrogate encoded in UTF-8', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a lone continuation byte', [0x80]],
    ['a multi-byte sequence cut by the newline', [0xe4, 0xb8]],
    ['Latin-1 text', [0x63, 0x61, 0x66, 0xe9]],
  ])('rejects %s as invalid_utf8', async (_name, bytes) => {
    const r = await read(Buffer.concat([Buffer.from('{"t":"'), Buffer.from(bytes), Buffer.from('"}\n{"ok":1}\n')]));
    expect(r.problems).toEqual([[1, 'invalid_utf8']]);
    expect(r.texts).toEqual([[2, '{"ok":1}']]);
  });

  it('applies the line limit to the bytes without the line ending, at the exact boundary', async () => {
    const line = (len: number): string => `"${'y'.repeat(len - 2)}"`;
    const r = await read(`${line(100)}\r\n${line(101)}\n${line(100)}`, '.jsonl', 100);
    expect(r.texts.map(([l]) => l)).toEqual([1, 3]);
    expect(r.problems).toEqual([[2, 'line_too_long']]);
  });

  it('handles a 2 MB line under the default 1 MiB limit without losing its neighbours', async () => {
    const r = await read(`{"a":1}\n{"x":"${'z'.repeat(2 << 20)}"}\n{"b":2}\n`);
    expect(r.texts).toEqual([
      [1, '{"a":1}'],
      [3, '{"b":2}'],
    ]);
    expect(r.problems).toEqual([[2, 'line_too_long']]);
  });

  it('ignores a BOM at the start of any line (files concatenated with cat)', async () => {
    const r = await read('{"a":1}\n\ufeff{"b":2}\r\n');
    expect(r.texts).toEqual([
      [1, '{"a":1}'],
      [2, '{"b":2}'],
    ]);
  });

  it('reads every member of a multi-member gzip file', async () => {
    const data = Buffer.concat([gzipSync('{"a":1}\n'), gzipSync('{"b":2}\n')]);
    writeFileSync(join(dir, 'multi.jsonl.gz'), data);
    const r = await readShardLines(join(dir, 'multi.jsonl.gz'), 'multi.jsonl.gz', 1 << 20);
    expect(r.lines.map((l) => l.text)).toEqual(['{"a":1}', '{"b":2}']);
    expect(r.issues).toEqual([]);
  });

  it('salvages the complete lines of a truncated gzip file and reports it once', async () => {
    const lines = Array.from({ length: 400 }, (_, i) => JSON.stringify({ i, pad: `${i}`.repeat(i % 37) }));
    const gz = gzipSync(`${lines.join('\n')}\n`);
    const name = 'cut.jsonl.gz';
    writeFileSync(join(dir, name), gz.subarray(0, Math.floor(gz.length * 0.6)));
    const r = await readShardLines(join(dir, name), name, 1 << 20);
    expect(r.issues.filter((i) => i.reason === 'truncated_gzip')).toEqual([
      expect.objectContaining({ file: name, line: 0 }),
    ]);
    const complete = r.lines.filter((l) => !l.unterminated);
    expect(complete.length).toBeGreaterThan(50);
    expect(complete.map((l) => l.text)).toEqual(lines.slice(0, complete.length));
    // The salvaged tail, if any, is a strict prefix of the next line and marked unterminated.
    const tail = r.lines.filter((l) => l.unterminated);
    expect(tail.length).toBeLessThanOrEqual(1);
    if (tail[0]) expect(lines[complete.length]!.startsWith(tail[0].text)).toBe(true);
  });

  it.each([
    ['garbage', Buffer.from('this is not gzip\n')],
    ['an empty .gz file', Buffer.alloc(0)],
    ['only the gzip header', gzipSync('{"a":1}\n').subarray(0, 10)],
  ])('reports %s as a damaged gzip file with no records', async (_name, data) => {
    const name = `bad${n++}.jsonl.gz`;
    writeFileSync(join(dir, name), data);
    const r = await readShardLines(join(dir, name), name, 1 << 20);
    expect(r.lines).toEqual([]);
    expect(r.issues.map((i) => i.reason)).toEqual([data.length === 0 ? 'empty_file' : 'truncated_gzip']);
  });

  it('reports a file it cannot read instead of throwing', async () => {
    const r = await readShardLines(join(dir, 'missing.jsonl'), 'missing.jsonl', 1 << 20);
    expect(r.issues).toEqual([expect.objectContaining({ file: 'missing.jsonl', line: 0, reason: 'unreadable_file' })]);
    const d = await readShardLines(dir, 'a-directory.jsonl', 1 << 20);
    expect(d.issues.map((i) => [i.reason, i.detail])).toEqual([
      ['not_regular_file', 'a directory, not a regular file; only regular files are read'],
    ]);
  });
});
