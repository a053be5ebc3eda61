import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCorpusFiles } from '../../src/corpus/local-corpus-files.js';
import { spillTable } from '../../src/corpus/scp-spill.js';
import { mapTable } from '../../src/corpus/scp-table.js';
import { digest } from '../../src/util/hash.js';

/**
 * A spilled `.scp` table (on disk, sorted by id hash) must answer exactly what the Map of the same
 * file answers, whatever the file's lines look like: a large scp is otherwise resolved differently
 * from a small one and the index would depend on a memory bound.
 */
const base = mkdtempSync(join(tmpdir(), 'flanstream-scp-table-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

function scpOf(lines: string[]): { files: LocalCorpusFiles; bytes: Buffer } {
  const dir = mkdtempSync(join(base, 'c-'));
  const bytes = Buffer.from(lines.join(''), 'utf8');
  writeFileSync(join(dir, 'list.scp'), bytes);
  return { files: new LocalCorpusFiles(dir), bytes };
}

describe('a spilled scp table', () => {
  it('resolves every id as the Map does: last line wins, odd whitespace, non-ASCII, blank and path-less lines', () => {
    const lines = ['\ufeff01_X_bom a/bom.wav\n', '\n', '   \n', 'lonely-id\n'];
    for (let i = 0; i < 5000; i++) lines.push(`01_X_${i} speech/01_X/${i % 97}/${i}.wav\n`);
    lines.push(
      '01_X_7 speech/01_X/again/7.wav\n', // a repeated id: the later path wins
      '  01_X_crlf\t  dir with space/c.flac \r\n',
      '01_X_语音 speech/01_X/中文.wav\n',
      '01_X_7 speech/01_X/third/7.wav\n',
      `01_X_long ${'p/'.repeat(600)}long.wav\n`, // longer than one read of the strings file
      '01_X_last speech/01_X/no-newline.wav',
    );
    const { files, bytes } = scpOf(lines);
    const small = mapTable(bytes);
    const spilled = spillTable(files, 'list.scp');
    expect(spilled).toBeDefined();
    try {
      expect(spilled!.digest).toBe(digest(bytes));
      const ids = ['01_X_bom', '\ufeff01_X_bom', 'lonely-id', '01_X_crlf', '01_X_语音', '01_X_long', '01_X_last'];
      for (let i = 0; i < 5100; i += 1) ids.push(`01_X_${i}`);
      ids.push('01_X_', '', 'missing', '01_X_7 ');
      const got = ids.map((id) => spilled!.table.get(id));
      expect(got).toEqual(ids.map((id) => small.get(id)));
      expect(spilled!.table.get('01_X_7')).toBe('speech/01_X/third/7.wav');
      expect(spilled!.table.get('01_X_crlf')).toBe('dir with space/c.flac');
      expect(got.filter((p) => p !== undefined)).toHaveLength(5000 + 5);
      // Paths in line order: the first clips of the file, for the codebook sample.
      expect([...spilled!.table.paths()].slice(0, 3)).toEqual([...small.paths()].slice(0, 3));
    } finally {
      spilled!.table.close();
    }
  });

  it('spreads a large file over many key-range buckets, keeps one key per block, and leaves no temporary behind', () => {
    const lines: string[] = [];
    for (let i = 0; i < 20_000; i++)
      lines.push(`02_Big_${i} speech/02_Big/${i % 1000}/utterance-${i}-${'x'.repeat(40)}.wav\n`);
    const { files, bytes } = scpOf(lines);
    const tmp = join(base, 'tmp');
    mkdirSync(tmp);
    const before = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      // About 30 buckets of 64 KB of the file each.
      const spilled = spillTable(files, 'list.scp', 64 << 10)!;
      try {
        expect(readdirSync(tmp)).toEqual([]);
        expect(spilled.table.memoryBytes).toBeLessThan(bytes.length / 10);
        for (const i of [0, 1, 7_777, 12_000, 19_999])
          expect(spilled.table.get(`02_Big_${i}`)).toBe(
            `speech/02_Big/${i % 1000}/utterance-${i}-${'x'.repeat(40)}.wav`,
          );
        expect(spilled.table.get('02_Big_20000')).toBeUndefined();
      } finally {
        spilled.table.close();
      }
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
  });
});
