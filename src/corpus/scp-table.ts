import type { CorpusFiles } from './corpus-files.js';

/**
 * One `.scp` file's id → path map as the audio resolver looks ids up. A small file is a Map. A
 * large one is spilled: Audio-FLAN's largest datasets list tens of millions of clips, gigabytes as
 * a Map, so a file over `spillBytes` is read streaming (scp-spill.ts) into a table on disk sorted by a 64-bit
 * hash of the id (bucketed by hash range, each bucket sorted alone), with the ids and paths in a
 * second file; memory keeps one key per block of the table. A lookup reads one block and the
 * strings of the entries sharing the id's hash. Both forms answer what a Map of the file's lines
 * answers: the id is a line's text up to its first whitespace, the path the rest, trimmed, and the
 * last line of an id wins.
 */
export interface ScpTable {
  get(id: string): string | undefined;
  /** Paths in line order (a sample of the listed clips; a spilled table does not fold repeated ids). */
  paths(): Iterable<string>;
  /** What the table holds in memory, roughly (the resolver bounds its loaded tables by it). */
  readonly memoryBytes: number;
  close(): void;
}

/** An `.scp` file's table and the digest of its bytes (for the incremental index). */
export interface LoadedScp {
  readonly table: ScpTable;
  readonly digest: string;
}

/** Memory of a Map entry beyond its line's bytes (key and value strings, the entry): measured ~2× a line. */
const MAP_BYTES_PER_SOURCE_BYTE = 2;

/** The lines of a file read in chunks (each chunk shown to `seen` first), decoded one by one. */
export function* lines(chunks: Iterable<Buffer>, seen: (c: Buffer) => void = () => {}): Generator<string> {
  let rest: Buffer = Buffer.alloc(0);
  for (const c of chunks) {
    seen(c);
    const data = rest.length > 0 ? Buffer.concat([rest, c]) : c;
    let at = 0;
    for (let nl = data.indexOf(0x0a, at); nl >= 0; nl = data.indexOf(0x0a, at)) {
      yield data.toString('utf8', at, nl);
      at = nl + 1;
    }
    rest = Buffer.from(data.subarray(at));
  }
  if (rest.length > 0) yield rest.toString('utf8');
}

/**
 * The paths of a large `.scp` file in line order, read only as far as they are taken (the codebook
 * sample needs a few clips of each file, not a table of all of them).
 */
export function* scpPaths(files: CorpusFiles, rel: string): Generator<string> {
  const o = files.open(rel);
  if (!o.ok) return;
  try {
    for (const line of lines(o.chunks())) {
      const e = parseLine(line);
      if (e) yield e[1];
    }
  } finally {
    o.close();
  }
}

/** A line's id and path, or undefined for a blank or path-less line (as the resolver always parsed them). */
export function parseLine(line: string): [string, string] | undefined {
  const trimmed = line.trim();
  if (trimmed === '') return undefined;
  const space = trimmed.search(/\s/);
  if (space <= 0) return undefined;
  return [trimmed.slice(0, space), trimmed.slice(space).trim()];
}

class MapTable implements ScpTable {
  constructor(
    private readonly map: Map<string, string>,
    readonly memoryBytes: number,
  ) {}
  get(id: string): string | undefined {
    return this.map.get(id);
  }
  paths(): Iterable<string> {
    return this.map.values();
  }
  close(): void {}
}

/** The table of a file read whole (small, or unreadable: then `bytes` is empty). */
export function mapTable(bytes: Buffer): ScpTable {
  const map = new Map<string, string>();
  for (const line of bytes.toString('utf8').split('\n')) {
    const e = parseLine(line);
    if (e) map.set(e[0], e[1]);
  }
  return new MapTable(map, 64 + MAP_BYTES_PER_SOURCE_BYTE * bytes.length);
}
