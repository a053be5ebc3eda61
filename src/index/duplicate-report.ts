import type { QuarantineEntry } from '../corpus/quarantine.js';
import type { DuplicateQuads } from './duplicate-uuids.js';
import { DUP_WIDTH } from './duplicate-uuids.js';
import { ROW, type ShardMeta } from './format.js';
import { ShardFiles } from './shard-access.js';

/** Entries per block written: one string of a million lines would exceed V8's string limit. */
const BLOCK = 4096;

/**
 * The quarantine report's lines for the records of shard `shard` that repeat a uuid of an earlier
 * shard (corpus order), each naming that first occurrence as `<file>:<line>` — the form a shard
 * builder uses for a repeat inside one shard. Read back from the shard files (a row and a string
 * per duplicate), so the merge keeps only the 16-byte quads in memory.
 */
export function* duplicateEntries(
  indexDir: string,
  shards: readonly ShardMeta[],
  dups: DuplicateQuads,
  shard: number,
): Generator<Buffer> {
  const n = dups.length / DUP_WIDTH;
  let k = 0;
  for (let b = n; k < b;) {
    const m = (k + b) >> 1;
    if ((dups[m * DUP_WIDTH] ?? 0) < shard) k = m + 1;
    else b = m;
  }
  if (k >= n || dups[k * DUP_WIDTH] !== shard) return;
  const files = new ShardFiles(indexDir, shards);
  try {
    let block: string[] = [];
    for (; k < n && dups[k * DUP_WIDTH] === shard; k++) {
      const [r, fs, fr] = [dups[k * DUP_WIDTH + 1]!, dups[k * DUP_WIDTH + 2]!, dups[k * DUP_WIDTH + 3]!];
      const row = files.row(shard, r);
      const uuid = files.string(shard, row[ROW.UUID_OFF] ?? 0, row[ROW.UUID_LEN] ?? 0).toString('utf8');
      const first = `${shards[fs]!.source}:${files.row(fs, fr)[ROW.LINE] ?? 0}`;
      const entry: QuarantineEntry = {
        file: shards[shard]!.source,
        line: row[ROW.LINE] ?? 0,
        reason: 'duplicate_uuid',
        detail: `uuid ${uuid} already appears at ${first}`,
      };
      block.push(JSON.stringify(entry) + '\n');
      if (block.length === BLOCK) {
        yield Buffer.from(block.join(''));
        block = [];
      }
    }
    if (block.length > 0) yield Buffer.from(block.join(''));
  } finally {
    files.close();
  }
}
