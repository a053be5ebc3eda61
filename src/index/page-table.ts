import { IndexCorruptError } from '../errors.js';
import { checksum, pageDigest } from '../util/hash.js';
import {
  PAGE_BYTES,
  PAGE_DIGEST_BYTES,
  PAGE_TOKENS,
  PAGED_SECTIONS,
  type PagedSection,
  type ShardMeta,
} from './format.js';
import { decodeTokenPage } from './token-pages.js';

/**
 * A shard's page table and what it says of each page: where the page is stored, and whether the
 * bytes read for it are the ones the index was built with. Why its own file: how a page is
 * located and verified is the same for a page read on the spot and one read ahead (shard-pages.ts).
 */

/** Digests of every page of one section, back to back (the section's part of the page table). */
export function sectionDigests(buf: Uint8Array, section: PagedSection): Buffer {
  const size = PAGE_BYTES[section];
  const pages = Math.ceil(buf.byteLength / size);
  const out = Buffer.alloc(pages * PAGE_DIGEST_BYTES);
  for (let p = 0; p < pages; p++)
    pageDigest(buf.subarray(p * size, (p + 1) * size)).copy(out, p * PAGE_DIGEST_BYTES, 0, PAGE_DIGEST_BYTES);
  return out;
}

/** Pages of a section of a shard: token pages hold PAGE_TOKENS tokens whatever their stored size. */
export function sectionPages(s: ShardMeta, section: PagedSection): number {
  return section === 'tokens'
    ? Math.ceil(s.tokens / PAGE_TOKENS)
    : Math.ceil(s.sections[section][1] / PAGE_BYTES[section]);
}

/** Pages of every paged section of a shard before `section` (where its digests start in the table). */
export function pagesBefore(s: ShardMeta, section: PagedSection): number {
  let n = 0;
  for (const name of PAGED_SECTIONS) {
    if (name === section) return n;
    n += sectionPages(s, name);
  }
  return n;
}

const INT_SECTIONS: ReadonlySet<PagedSection> = new Set(['tokens', 'rows', 'spans', 'lists', 'columns']);

/**
 * A verified page as served: token pages decoded from their stored form (token-pages.ts), the
 * other int32 sections as views, strings as bytes. `tokens` is the page's token count.
 */
export function decodePage(
  buf: Buffer,
  section: PagedSection,
  tokens: number,
  file: string,
  what: string,
): Int32Array | Buffer {
  if (section === 'tokens') return decodeTokenPage(buf, tokens, file, what);
  return INT_SECTIONS.has(section) ? new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4) : buf;
}

/** A shard's verified page table, and where each stored token page starts in the tokens section (one more entry: the end). */
export interface Table {
  readonly digests: Buffer;
  readonly tokenStarts: Float64Array;
}

/** Where shard s's page table is, checked against its page count before anything is read. */
export function tableRange(s: ShardMeta, file: string): readonly [number, number] {
  const [off, len] = s.sections.pages;
  let pages = 0;
  for (const name of PAGED_SECTIONS) pages += sectionPages(s, name);
  const tokenPages = sectionPages(s, 'tokens');
  if (len !== pages * PAGE_DIGEST_BYTES + tokenPages * 4)
    throw new IndexCorruptError(file, `page table has ${len} bytes for ${pages} pages`);
  return [off, len];
}

/**
 * The page table checked against the manifest; the token pages' stored lengths become their
 * offsets. `forget` drops what the storage kept of the file (a failed check reads it again).
 */
export function checkedTable(s: ShardMeta, file: string, table: Buffer, forget: () => void): Table {
  if (checksum(table) !== s.checksums.pages) {
    forget();
    throw new IndexCorruptError(file, 'page table fails its checksum');
  }
  const tokenPages = sectionPages(s, 'tokens');
  const digests = table.subarray(0, table.length - tokenPages * 4);
  const tokenStarts = new Float64Array(tokenPages + 1);
  for (let p = 0, at = digests.length; p < tokenPages; p++, at += 4)
    tokenStarts[p + 1] = tokenStarts[p]! + table.readUInt32LE(at);
  if (tokenStarts[tokenPages] !== s.sections.tokens[1])
    throw new IndexCorruptError(
      file,
      `token pages add up to ${tokenStarts[tokenPages]} bytes; the tokens section has ${s.sections.tokens[1]}`,
    );
  return { digests, tokenStarts };
}

/** Where page p is stored: [offset in the file, bytes]. Token pages vary in size (token-pages.ts); the table says where each is. */
export function storedRange(s: ShardMeta, section: PagedSection, p: number, table: Table): readonly [number, number] {
  const [off, len] = s.sections[section];
  if (section === 'tokens') return [off + table.tokenStarts[p]!, table.tokenStarts[p + 1]! - table.tokenStarts[p]!];
  return [off + p * PAGE_BYTES[section], Math.min(PAGE_BYTES[section], len - p * PAGE_BYTES[section])];
}

/**
 * A page's bytes checked against its digest in the shard's page table, as served (decodePage).
 * `before`: the shard's pages ahead of this section (pagesBefore). Nothing of a failed page is
 * kept, here or below (`forget`): the next request reads it again.
 */
export function verifiedPage(
  s: ShardMeta,
  file: string,
  section: PagedSection,
  p: number,
  before: number,
  buf: Buffer,
  table: Table,
  forget: () => void,
): Int32Array | Buffer {
  const at = (before + p) * PAGE_DIGEST_BYTES;
  if (pageDigest(buf).compare(table.digests, at, at + PAGE_DIGEST_BYTES, 0, PAGE_DIGEST_BYTES) !== 0) {
    forget();
    throw new IndexCorruptError(file, `${section} page ${p} fails its checksum`);
  }
  return decodePage(buf, section, Math.min(PAGE_TOKENS, s.tokens - p * PAGE_TOKENS), file, `${section} page ${p}`);
}
