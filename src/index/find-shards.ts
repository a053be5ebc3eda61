import type { CorpusFiles } from '../corpus/corpus-files.js';
import { LocalCorpusFiles } from '../corpus/local-corpus-files.js';

/** A file under metadata/ named like a shard that the layout does not admit, and why. */
export interface SkippedFile {
  readonly path: string;
  readonly why: string;
}

export interface FoundShards {
  /** Shards at `metadata/<domain>/<ug>/<split>/<dataset>/jsonl/*.jsonl[.gz]`, relative to the corpus, sorted. */
  readonly sources: string[];
  readonly skipped: SkippedFile[];
}

const SHARD_NAME = /\.jsonl(\.gz)?$/;
const LOOKS_LIKE_SHARD = /\.jsonl(\.gz)?$/i;

/**
 * The corpus's JSONL shards, and the files that look like shards but lie outside the layout
 * (another case of extension, a directory named `x.jsonl`, a `.jsonl` not in a `jsonl/` folder),
 * which are reported as skipped rather than silently ignored. A shard path that is not a regular
 * file (a FIFO, a dangling link) is still a shard: reading it quarantines it with its reason.
 */
export function discoverShards(corpus: string | CorpusFiles): FoundShards {
  const files = typeof corpus === 'string' ? new LocalCorpusFiles(corpus) : corpus;
  const sources: string[] = [];
  const skipped: SkippedFile[] = [];
  // `dir` is corpus-relative; `parts` counts the levels below metadata/.
  const walk = (dir: string, depth: number): void => {
    for (const ent of files.list(dir)) {
      const p = `${dir}/${ent.name}`;
      const parts = p.split('/').slice(1);
      const looksLike = LOOKS_LIKE_SHARD.test(ent.name);
      if (ent.dir) {
        if (looksLike) skipped.push({ path: p, why: 'a directory named like a shard' });
        if (depth < 6) walk(p, depth + 1);
      } else if (looksLike) {
        if (!SHARD_NAME.test(ent.name))
          skipped.push({ path: p, why: 'extension is not .jsonl or .jsonl.gz (names are case-sensitive)' });
        else if (parts.length !== 6 || parts[4] !== 'jsonl')
          skipped.push({ path: p, why: 'not at metadata/<domain>/<ug>/<split>/<dataset>/jsonl/<file>' });
        else sources.push(p);
      }
    }
  };
  walk('metadata', 0);
  const byPath = (a: { path: string } | string, b: { path: string } | string): number => {
    const [x, y] = [typeof a === 'string' ? a : a.path, typeof b === 'string' ? b : b.path];
    return x < y ? -1 : x > y ? 1 : 0;
  };
  return { sources: sources.sort(byPath), skipped: skipped.sort(byPath) };
}

/** The shard paths of discoverShards. */
export function findShards(corpus: string | CorpusFiles): string[] {
  return discoverShards(corpus).sources;
}
