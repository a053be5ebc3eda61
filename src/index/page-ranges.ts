import { IndexCorruptError } from '../errors.js';
import { PAGE_BYTES, PAGE_TOKENS, type PagedSection } from './format.js';
import type { ShardPages } from './shard-pages.js';

/**
 * Ranges of a section that may cross pages, read from the pages of a shard: int32 entries, a
 * string, a run of tokens. What the index reader's accessors (index-reader.ts) are made of.
 * `file` names shard i's file in errors.
 */

const EMPTY = new Int32Array(0);
/** Token runs up to this long are copied by a loop (see copyTokens). */
const SHORT_RUN = 32;

/**
 * Int32 entries [start, start + n) of a section: a view into the cached page when they lie in
 * one (always for a row), else a copy (into `into` when given, ≥ n long). Entries past the
 * section's end are an IndexCorruptError, never a short view.
 */
export function intRange(
  pages: ShardPages,
  file: (i: number) => string,
  i: number,
  section: Exclude<PagedSection, 'strings'>,
  start: number,
  n: number,
  into?: Int32Array,
): Int32Array {
  // Nothing to read touches no page: a text-only shard's spans section is empty, and its page 0
  // does not exist.
  if (n === 0) return EMPTY;
  const per = PAGE_BYTES[section] / 4;
  const p = Math.floor(start / per);
  const from = start - p * per;
  const page = pages.ints(i, section, p);
  if (from + n <= page.length) return page.subarray(from, from + n);
  const out = into ? into.subarray(0, n) : new Int32Array(n);
  for (let done = 0; done < n;) {
    const q = Math.floor((start + done) / per);
    const at = start + done - q * per;
    const part = pages.ints(i, section, q).subarray(at, at + n - done);
    if (part.length === 0)
      throw new IndexCorruptError(file(i), `${section} entry ${start + done} is past the section's end`);
    out.set(part, done);
    done += part.length;
  }
  return out;
}

/** Bytes [off, off + len) of shard `i`'s strings section as UTF-8. */
export function stringAt(pages: ShardPages, i: number, off: number, len: number): string {
  if (len === 0) return '';
  const size = PAGE_BYTES.strings;
  const p = Math.floor(off / size);
  const from = off - p * size;
  if (from + len <= size) return pages.bytes(i, p).toString('utf8', from, from + len);
  const parts: Buffer[] = [];
  for (let q = p; q * size < off + len; q++) parts.push(pages.bytes(i, q));
  return Buffer.concat(parts).toString('utf8', from, from + len);
}

/** Copies tokens [start, start + len) of shard `i` into `out` at `at`. */
export function copyTokens(
  pages: ShardPages,
  file: (i: number) => string,
  i: number,
  start: number,
  len: number,
  out: Int32Array,
  at: number,
): void {
  let done = 0;
  while (done < len) {
    const pos = start + done;
    const p = Math.floor(pos / PAGE_TOKENS);
    const page = pages.ints(i, 'tokens', p);
    const from = pos - p * PAGE_TOKENS;
    const n = Math.min(len - done, page.length - from);
    if (n <= 0) throw new IndexCorruptError(file(i), `token ${pos} is past the tokens section's end`);
    // Most runs of a batch are short text (an instruction, an answer): for those a loop beats
    // making a subarray view to hand to set().
    if (n <= SHORT_RUN) for (let j = 0, o = at + done; j < n; j++) out[o + j] = page[from + j]!;
    else out.set(page.subarray(from, from + n), at + done);
    done += n;
  }
}
