import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checksum, clipKey, key64, pageDigest } from '../../src/util/hash.js';

/** The index's keys and digests are format: the one-shot SHA-1 must give exactly the Hash object's bytes. */
const ref = (d: string | Uint8Array): Buffer => createHash('sha1').update(d).digest();

describe('util/hash one-shot SHA-1', () => {
  const bytes = Buffer.from(Array.from({ length: 9000 }, (_, i) => (i * 131 + 7) & 0xff));
  // Views at odd offsets and lengths (a clip's tokens are a view into a larger buffer), and strings beyond ASCII.
  const views = [0, 1, 3, 64, 4095, 4096, 8999].map((n) => bytes.subarray(n % 5, n));
  const strings = ['', 'uuid-1', '07_common_voice_46e27569d6e1b394', 'ü ∑ 😀 \u0000 end'];

  it('pageDigest, checksum and key64 equal createHash("sha1") on bytes and strings', () => {
    for (const v of views) {
      expect(pageDigest(v).equals(ref(v))).toBe(true);
      expect(checksum(v)).toBe(ref(v).toString('hex').slice(0, 16));
      expect(key64(v)).toEqual([ref(v).readInt32LE(0), ref(v).readInt32LE(4)]);
    }
    for (const s of strings) expect(key64(s)).toEqual([ref(s).readInt32LE(0), ref(s).readInt32LE(4)]);
  });

  it('clipKey hashes exactly the bytes of an Int32Array view', () => {
    const all = Int32Array.from({ length: 100 }, (_, i) => i * 7919 - 300);
    const view = all.subarray(10, 50);
    const r = ref(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    expect(clipKey(view)).toEqual([r.readInt32LE(0), r.readInt32LE(4)]);
  });
});
