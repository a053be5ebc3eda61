import { join } from 'node:path';
import { checksum } from '../util/hash.js';
import {
  CONTENT_SECTIONS,
  PAGED_SECTIONS,
  SHARDS_DIR,
  type PagedSection,
  type Section,
  type ShardMeta,
} from './format.js';
import { writeFileAtomic } from './manifest-io.js';
import { sectionDigests } from './page-table.js';
import type { EncodedTokens } from './token-pages.js';

/** Where a written shard file's sections are, and the checksums the manifest keeps for it. */
export type WrittenShard = Pick<ShardMeta, 'file' | 'bytes' | 'sections' | 'checksums'>;

/** A shard's served sections: its tokens encoded (token-pages.ts), the tables as int32 and bytes. */
export type ShardSections = { readonly tokens: EncodedTokens } & Readonly<
  Record<Exclude<PagedSection, 'tokens'>, Buffer>
>;

/**
 * Writes `shards/<key>.bin`: the served sections back to back in page-table order (tokens first),
 * their page table (every page's digest, then each stored token page's byte length), then `deps`.
 * Written atomically (writeFileAtomic), so a reader never sees half a file. `checksums.content` is
 * the checksum of the page table the shard would have with int32 tokens and without its columns:
 * it identifies what the shard serves, however its tokens are stored.
 */
export function writeShardFile(indexDir: string, key: string, served: ShardSections, deps: Buffer): WrittenShard {
  const { tokens } = served;
  const names = PAGED_SECTIONS.filter((s) => s !== 'tokens');
  const tables = names.map((s) => sectionDigests(served[s], s));
  // The columns restate what the other sections hold: leaving them out keeps the fingerprint of
  // an index the same whatever columns its format stores.
  const content = tables.filter((_, k) => (CONTENT_SECTIONS as readonly string[]).includes(names[k]!));
  const lengths = Buffer.from(tokens.lengths.buffer, tokens.lengths.byteOffset, tokens.lengths.byteLength);
  const pages = Buffer.concat([tokens.digests, ...tables, lengths]);
  const parts: [PagedSection | 'pages' | 'deps', Buffer][] = [
    ...PAGED_SECTIONS.map((s): [PagedSection, Buffer] => [s, s === 'tokens' ? tokens.bytes : served[s]]),
    ['pages', pages],
    ['deps', deps],
  ];
  const sections = {} as Record<PagedSection | 'pages' | 'deps', Section>;
  let offset = 0;
  for (const [name, buf] of parts) {
    sections[name] = [offset, buf.length];
    offset += buf.length;
  }
  const file = `${SHARDS_DIR}/${key}.bin`;
  writeFileAtomic(
    join(indexDir, file),
    parts.map(([, buf]) => buf),
  );
  return {
    file,
    bytes: offset,
    sections,
    checksums: {
      pages: checksum(pages),
      deps: checksum(deps),
      content: checksum(Buffer.concat([tokens.contentDigests, ...content])),
    },
  };
}
