import { join } from 'node:path';
import { checksum } from '../util/hash.js';
import { PAGED_SECTIONS, SHARDS_DIR, type PagedSection, type Section, type ShardMeta } from './format.js';
import { writeFileAtomic } from './manifest-io.js';
import { pageTable, sectionDigests } from './shard-pages.js';

/** Where a written shard file's sections are, and the checksums the manifest keeps for it. */
export type WrittenShard = Pick<ShardMeta, 'file' | 'bytes' | 'sections' | 'checksums'>;

/**
 * Writes `shards/<key>.bin`: the served sections back to back in page-table order (tokens first,
 * so token offsets are file offsets / 4), their page table, then `deps`. Written atomically
 * (writeFileAtomic), so a reader never sees half a file. `digestsOf` lets a caller that
 * already knows a section's page digests skip recomputing them.
 */
export function writeShardFile(indexDir: string, key: string, served: Readonly<Record<PagedSection, Buffer>>, deps: Buffer, digestsOf = sectionDigests): WrittenShard {
  const pages = pageTable(served, digestsOf);
  const parts: [PagedSection | 'pages' | 'deps', Buffer][] = [...PAGED_SECTIONS.map((s): [PagedSection, Buffer] => [s, served[s]]), ['pages', pages], ['deps', deps]];
  const sections = {} as Record<PagedSection | 'pages' | 'deps', Section>;
  let offset = 0;
  for (const [name, buf] of parts) {
    sections[name] = [offset, buf.length];
    offset += buf.length;
  }
  const file = `${SHARDS_DIR}/${key}.bin`;
  writeFileAtomic(join(indexDir, file), parts.map(([, buf]) => buf));
  return { file, bytes: offset, sections, checksums: { pages: checksum(pages), deps: checksum(deps) } };
}
