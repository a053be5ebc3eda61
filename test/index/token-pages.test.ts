import { describe, expect, it } from 'vitest';
import { IndexCorruptError } from '../../src/errors.js';
import { PAGE_TOKENS } from '../../src/index/format.js';
import { sectionDigests } from '../../src/index/page-table.js';
import { HEADER_BYTES, decodeTokenPage, encodeTokens, type EncodedTokens } from '../../src/index/token-pages.js';

/** Qwen3's text vocabulary and 8 codebooks of 1,024 codes above it, as a real index lays them out. */
const codec = { base: 151_669, span: 8 * 1024 };
const SOA = 151_700 - 100;

function decodeAll(e: EncodedTokens, tokens: number): Int32Array {
  const out = new Int32Array(tokens);
  let at = 0;
  e.lengths.forEach((len, p) => {
    out.set(
      decodeTokenPage(
        e.bytes.subarray(at, at + len),
        Math.min(PAGE_TOKENS, tokens - p * PAGE_TOKENS),
        'shard.bin',
        `tokens page ${p}`,
      ),
      p * PAGE_TOKENS,
    );
    at += len;
  });
  expect(at).toBe(e.bytes.length);
  return out;
}

/** Records of text then a clip: a few text ids (some above the 2-byte range), `<|SOA|>` codes `<|EOA|>`. */
function records(n: number, seed: number): Int32Array {
  const out: number[] = [];
  let x = seed;
  const rnd = (m: number): number => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % m);
  while (out.length < n) {
    for (let i = 0; i < 12; i++) out.push(rnd(151_000));
    out.push(SOA);
    for (let f = 0; f < 40; f++) for (let q = 0; q < 8; q++) out.push(codec.base + q * 1024 + rnd(1024));
    out.push(SOA + 1);
  }
  return Int32Array.from(out.slice(0, n));
}

describe('token pages', () => {
  it.each([1, 2, 3, 1001, PAGE_TOKENS - 1, PAGE_TOKENS, PAGE_TOKENS + 1, 3 * PAGE_TOKENS + 17])(
    'give back exactly the tokens stored (%i tokens)',
    (n) => {
      const tokens = records(n, n);
      const e = encodeTokens(tokens, codec);
      expect(e.lengths.length).toBe(Math.ceil(n / PAGE_TOKENS));
      expect(Array.from(decodeAll(e, n))).toEqual(Array.from(tokens));
    },
  );

  it('store audio codes and small text ids in 2 bytes, the rest in 6', () => {
    const tokens = records(4 * PAGE_TOKENS, 7);
    const e = encodeTokens(tokens, codec);
    const wide = tokens.filter(
      (t) => t >= 0xffff - codec.span && !(t >= codec.base && t < codec.base + codec.span),
    ).length;
    const pages = e.lengths.length;
    // Header and the 4-byte alignment of each page's escapes, besides 2 bytes a token and 4 more per escape.
    expect(e.bytes.length).toBeLessThanOrEqual(2 * tokens.length + 4 * wide + pages * (HEADER_BYTES + 2));
    expect(e.bytes.length / tokens.length).toBeLessThan(2.3);
  });

  it('store a page in int32 when 2 bytes a token would be larger', () => {
    const tokens = Int32Array.from({ length: 1000 }, (_, i) => 140_000 + i);
    const e = encodeTokens(tokens, codec);
    expect(e.bytes.length).toBe(HEADER_BYTES + 4 * 1000);
    expect(Array.from(decodeAll(e, 1000))).toEqual(Array.from(tokens));
  });

  it('digest the int32 content apart from the stored bytes (what the fingerprint covers)', () => {
    const tokens = records(2 * PAGE_TOKENS + 5, 3);
    const e = encodeTokens(tokens, codec);
    expect(e.contentDigests.equals(sectionDigests(Buffer.from(tokens.buffer), 'tokens'))).toBe(true);
    expect(e.digests.equals(e.contentDigests)).toBe(false);
  });

  it('refuse a page whose structure does not add up, naming it', () => {
    const e = encodeTokens(records(500, 1), codec);
    const page = Buffer.from(e.bytes);
    expect(() => decodeTokenPage(page.subarray(0, page.length - 4), 500, 'shard.bin', 'tokens page 0')).toThrow(
      IndexCorruptError,
    );
    expect(() => decodeTokenPage(page, 600, 'shard.bin', 'tokens page 0')).toThrow(
      /shard\.bin: tokens page 0 has \d+ bytes for 600 uint16 tokens/,
    );
    const badMode = Buffer.from(page);
    badMode[0] = 9;
    expect(() => decodeTokenPage(badMode, 500, 'shard.bin', 'tokens page 0')).toThrow(
      /tokens page 0 has unknown mode 9/,
    );
    // An unaligned copy decodes the same (a read buffer need not start at a multiple of 4).
    const shifted = Buffer.alloc(page.length + 1);
    page.copy(shifted, 1);
    expect(Array.from(decodeTokenPage(shifted.subarray(1), 500, 'shard.bin', 'tokens page 0'))).toEqual(
      Array.from(decodeTokenPage(page, 500, 'shard.bin', 'tokens page 0')),
    );
  });
});
