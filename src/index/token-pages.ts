import { IndexCorruptError } from '../errors.js';
import { pageDigest } from '../util/hash.js';
import { PAGE_BYTES, PAGE_DIGEST_BYTES, PAGE_TOKENS } from './format.js';

/**
 * How a shard file stores its tokens: in pages of PAGE_TOKENS tokens (the last may be shorter),
 * each encoded on its own and stored back to back, so a page is still one ranged read and one
 * digest check. The page table gives each stored page's byte length (see shard-pages.ts).
 *
 * A page is an 8-byte header [mode u8, 0 u8, split u16, base int32] and then either
 *   mode 4: the tokens as int32, or
 *   mode 2: one uint16 code per token, then the int32 escapes (from a 4-byte boundary): a code
 *           c < split is the token c, split ≤ c < 0xFFFF is the token base + (c − split), and
 *           0xFFFF takes the next escape.
 * The writer puts the audio codes (base = the vocabulary's audio offset, codebooks × codebook size
 * of them) above `split` and the text ids below it: with 8 codebooks of 1,024 codes, text ids up
 * to 57,342 and every audio code take 2 bytes; rarer text ids and the special tokens take 6. A
 * page is stored in mode 2 only when that is smaller. Decoding happens once per page read (the
 * page cache holds decoded pages), so serving a cached page costs what it did with int32 storage.
 */
export const HEADER_BYTES = 8;
const ESCAPE = 0xffff;
const MODE_INT32 = 4;
const MODE_UINT16 = 2;

/** The 2-byte region of the audio codes: ids [base, base + span). */
export interface TokenCodec {
  readonly base: number;
  readonly span: number;
}

export function tokenCodecOf(vocab: {
  readonly audioOffset: number;
  readonly codebooks: number;
  readonly codebookSize: number;
}): TokenCodec {
  return { base: vocab.audioOffset, span: vocab.codebooks * vocab.codebookSize };
}

/** A shard's tokens as stored, with the digests the page table keeps for them. */
export interface EncodedTokens {
  /** The stored pages back to back. */
  readonly bytes: Buffer;
  /** Each stored page's byte length (the page table's tail). */
  readonly lengths: Uint32Array;
  /** Digests of the stored pages (what a reader verifies). */
  readonly digests: Buffer;
  /**
   * Digests of the tokens as int32 pages of PAGE_BYTES.tokens: what is served, independent of
   * how it is stored (the index fingerprint covers these, see compile-manifest.ts).
   */
  readonly contentDigests: Buffer;
}

const pad4 = (n: number): number => (n + 3) & ~3;

/** A page being encoded, aligned for typed views (one page at a time per thread), and its escapes. */
const scratch = new ArrayBuffer(HEADER_BYTES + PAGE_TOKENS * 4 + 4);
const scratch16 = new Uint16Array(scratch);
const scratch32 = new Int32Array(scratch);
const scratch8 = new Uint8Array(scratch);
const escaped = new Int32Array(PAGE_TOKENS);

/** Encodes `n` tokens of `src` from `from` into `out` at `at` (room for HEADER_BYTES + 4n); returns the page's stored length. */
function encodePage(src: Int32Array, from: number, n: number, codec: TokenCodec, out: Buffer, at: number): number {
  const split = ESCAPE - Math.min(codec.span, ESCAPE);
  const base = codec.base;
  const top = ESCAPE - split;
  const body = HEADER_BYTES / 2;
  let escapes = 0;
  // One pass as if narrow; the page is stored wide only when that is smaller.
  for (let k = 0; k < n; k++) {
    const t = src[from + k]!;
    const a = t - base;
    if (t >= 0 && t < split) scratch16[body + k] = t;
    else if (a >= 0 && a < top) scratch16[body + k] = split + a;
    else {
      scratch16[body + k] = ESCAPE;
      escaped[escapes++] = t;
    }
  }
  const narrow = HEADER_BYTES + pad4(2 * n) + 4 * escapes;
  const wide = HEADER_BYTES + 4 * n;
  const mode = narrow < wide ? MODE_UINT16 : MODE_INT32;
  if (mode === MODE_INT32) scratch32.set(src.subarray(from, from + n), HEADER_BYTES / 4);
  else {
    if (n % 2 === 1) scratch16[body + n] = 0;
    scratch32.set(escaped.subarray(0, escapes), (HEADER_BYTES + pad4(2 * n)) / 4);
  }
  scratch16[0] = mode;
  scratch16[1] = split;
  scratch32[1] = base;
  const len = mode === MODE_INT32 ? wide : narrow;
  out.set(scratch8.subarray(0, len), at);
  return len;
}

/** Encodes a shard's tokens page by page. */
export function encodeTokens(tokens: Int32Array, codec: TokenCodec): EncodedTokens {
  const pages = Math.ceil(tokens.length / PAGE_TOKENS);
  const out = Buffer.allocUnsafe(pages * HEADER_BYTES + tokens.length * 4);
  const lengths = new Uint32Array(pages);
  const digests = Buffer.alloc(pages * PAGE_DIGEST_BYTES);
  const contentDigests = Buffer.alloc(pages * PAGE_DIGEST_BYTES);
  const raw = Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength);
  let at = 0;
  for (let p = 0; p < pages; p++) {
    const from = p * PAGE_TOKENS;
    const n = Math.min(PAGE_TOKENS, tokens.length - from);
    const len = encodePage(tokens, from, n, codec, out, at);
    lengths[p] = len;
    pageDigest(out.subarray(at, at + len)).copy(digests, p * PAGE_DIGEST_BYTES, 0, PAGE_DIGEST_BYTES);
    pageDigest(raw.subarray(from * 4, from * 4 + n * 4)).copy(
      contentDigests,
      p * PAGE_DIGEST_BYTES,
      0,
      PAGE_DIGEST_BYTES,
    );
    at += len;
  }
  if (PAGE_TOKENS * 4 !== PAGE_BYTES.tokens) throw new Error('token pages must be PAGE_BYTES.tokens of int32');
  return { bytes: out.subarray(0, at), lengths, digests, contentDigests };
}

/**
 * The `count` tokens of one stored page (already verified against its digest). A page whose
 * structure does not add up is an IndexCorruptError naming its file and page (`what`), never
 * short or wrong tokens.
 */
export function decodeTokenPage(page: Uint8Array, count: number, file: string, what: string): Int32Array {
  const bad = (why: string): IndexCorruptError => new IndexCorruptError(file, `${what} ${why}`);
  if (page.byteLength < HEADER_BYTES) throw bad('is shorter than its header');
  const buf = Buffer.from(page.buffer, page.byteOffset, page.byteLength);
  const mode = buf.readUInt8(0);
  const out = new Int32Array(count);
  if (mode === MODE_INT32) {
    if (page.byteLength !== HEADER_BYTES + 4 * count)
      throw bad(`has ${page.byteLength} bytes for ${count} int32 tokens`);
    // Copied out of the read buffer: its offset need not be a multiple of 4.
    new Uint8Array(out.buffer).set(page.subarray(HEADER_BYTES));
    return out;
  }
  if (mode !== MODE_UINT16) throw bad(`has unknown mode ${mode}`);
  const split = buf.readUInt16LE(2);
  const base = buf.readInt32LE(4);
  const escAt = HEADER_BYTES + pad4(2 * count);
  if (page.byteLength < escAt || (page.byteLength - escAt) % 4 !== 0)
    throw bad(`has ${page.byteLength} bytes for ${count} uint16 tokens`);
  const aligned = page.byteOffset % 4 === 0 ? page : Uint8Array.from(page);
  const codes = new Uint16Array(aligned.buffer, aligned.byteOffset + HEADER_BYTES, count);
  const escapes = new Int32Array(aligned.buffer, aligned.byteOffset + escAt, (page.byteLength - escAt) / 4);
  let e = 0;
  for (let k = 0; k < count; k++) {
    const c = codes[k]!;
    if (c < split) out[k] = c;
    else if (c !== ESCAPE) out[k] = base + (c - split);
    else {
      if (e === escapes.length) throw bad('has more escapes than stored tokens');
      out[k] = escapes[e++]!;
    }
  }
  if (e !== escapes.length) throw bad(`stores ${escapes.length} escaped tokens and uses ${e}`);
  return out;
}
