import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRegular } from '../../src/corpus/regular-file.js';

const dir = mkdtempSync(join(tmpdir(), 'flanstream-regular-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readRegular', () => {
  it.each([0, 1, 4095, 4096, 4097, 3 << 20])('reads a %i-byte file whole, in one read of its size', (size) => {
    const file = join(dir, `f${size}`);
    const data = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31) & 0xff));
    writeFileSync(file, data);
    const got = readRegular(file);
    expect(got.ok && got.bytes.equals(data) && got.size === size).toBe(true);
  });

  it('reads on past the size fstat gave when the file is longer (grown, or a /proc file that says 0)', () => {
    // /proc/crypto is a regular file of stat size 0 holding several KB: the read continues past
    // the first probe (4 KiB) through the chunked path, and nothing is lost or repeated.
    const expected = readFileSync('/proc/crypto');
    expect(expected.length).toBeGreaterThan(4096);
    const got = readRegular('/proc/crypto');
    expect(got.ok).toBe(true);
    if (got.ok) {
      expect(got.size).toBe(0);
      expect(got.bytes.toString('latin1')).toBe(expected.toString('latin1'));
    }
  });
});
