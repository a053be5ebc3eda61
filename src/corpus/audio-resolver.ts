import { posix } from 'node:path';
import { LRUCache } from 'lru-cache';
import { digest } from '../util/hash.js';
import { splitAudioRefs } from './audio-refs.js';
import type { CorpusFiles } from './corpus-files.js';
import { LocalCorpusFiles } from './local-corpus-files.js';
import { NpyFormatError, parseNpy, type NpyArray } from './npy.js';
import type { QuarantineReason } from './quarantine.js';
import { scpRelativePath } from './scp-path.js';
import { spillTable } from './scp-spill.js';
import { mapTable, scpPaths, type ScpTable } from './scp-table.js';

export type Resolved =
  | {
      readonly ok: true;
      readonly npy: NpyArray;
      readonly file: string;
      readonly size: number;
      readonly mtimeMs: number;
      /** The scp file that named it, and a digest of that file's bytes (for the incremental index). */
      readonly scp: string;
      readonly scpHash: string;
    }
  | { readonly ok: false; readonly reason: QuarantineReason; readonly detail: string };

const DOMAIN_ORDER = ['speech', 'music', 'audio'] as const;
const NONE: readonly string[] = [];
/** Clips fetched ahead of the reader on S3 (the S3 worker holds up to 64). */
const PREFETCH_AHEAD = 32;

function firstSegment(s: string): string {
  const at = s.indexOf('_');
  return at < 0 ? s : s.slice(0, at);
}

/**
 * Resolves audio ids through `scp_files/<domain>/<NN_Dataset>.scp` to codec tokens under
 * `audio_tokens/`. An scp is loaded only when an id with its dataset prefix is first seen, and a
 * path that would leave the corpus (absolute, `..`, or a symlink pointing outside) is refused
 * before anything is opened. The corpus is read through CorpusFiles: a directory or s3://.
 */
/**
 * What the clip cache may hold, in bytes of codes. The indexer keeps the tokens it maps clips to
 * in a cache of its own (index/clip-tokens.ts, 128 MiB): the two together are most of a build's
 * memory, and neither grows with the part.
 */
const NPY_CACHE_BYTES = 128 << 20;
/** `.scp` files up to this size are held as a Map (about twice the file's size in memory). */
const SCP_SPILL_BYTES = 32 << 20;
/** What the loaded `.scp` tables may hold together. */
const SCP_TABLES_BYTES = 256 << 20;

/** Memory bounds of a resolver; tests set them tiny to force the spilled paths. */
export interface ResolverLimits {
  /** `.scp` files larger than this many bytes are spilled to disk (default 32 MiB). */
  readonly scpSpillBytes?: number;
}

export class AudioResolver {
  /** The corpus's files (the shard builder reads the JSONL through the same ones). */
  readonly files: CorpusFiles;
  private readonly datasetsByDomain = new Map<string, string[]>();
  private readonly bucketsByDomain = new Map<string, Map<string, string[]>>();
  /**
   * The `.scp` tables looked up so far, bounded by their memory: a part spans many datasets, and a
   * table evicted is read again if its dataset comes back (jobs go dataset by dataset, so rarely).
   */
  private readonly scps: LRUCache<string, ScpTable>;
  /** `.scp` files larger than this are spilled to disk instead of held as a Map (scp-table.ts). */
  private readonly scpSpillBytes: number;
  /** Bounded by bytes of codes: clip lengths vary by orders of magnitude. */
  private readonly npyCache = new LRUCache<string, Resolved>({
    maxSize: NPY_CACHE_BYTES,
    sizeCalculation: (r) => 64 + (r.ok ? r.npy.codes.byteLength : 0),
  });
  private readonly scpHashes = new Map<string, string>();
  private readonly unreadable: string[] = [];
  /** The current shard's clip files not yet read, in order (expect), and how many were prefetched / read since. */
  private upcoming: string[] = [];
  private issued = 0;
  private loaded = 0;

  /** Absolute prefixes of `.scp` paths to map into the corpus (normalizeAudioRoots). */
  private readonly audioRoots: readonly string[];

  constructor(corpus: string | CorpusFiles, audioRoots: readonly string[] = [], limits: ResolverLimits = {}) {
    this.audioRoots = audioRoots;
    this.scpSpillBytes = limits.scpSpillBytes ?? SCP_SPILL_BYTES;
    this.scps = new LRUCache<string, ScpTable>({
      // Room for a few of the largest tables held as Maps (about twice their file's size).
      maxSize: Math.max(SCP_TABLES_BYTES, 8 * this.scpSpillBytes),
      sizeCalculation: (t) => Math.max(1, t.memoryBytes),
      dispose: (t) => t.close(),
    });
    this.files = typeof corpus === 'string' ? new LocalCorpusFiles(corpus) : corpus;
  }

  private datasets(domain: string): string[] {
    let names = this.datasetsByDomain.get(domain);
    if (!names) {
      try {
        names = this.files
          .list(`scp_files/${domain}`)
          .map((e) => e.name)
          .filter((f) => f.endsWith('.scp'))
          .map((f) => f.slice(0, -4))
          .sort((a, b) => b.length - a.length);
      } catch {
        names = [];
      }
      this.datasetsByDomain.set(domain, names);
    }
    return names;
  }

  /**
   * The datasets of a domain whose name could prefix `id` (`<dataset>_…`): those whose first
   * `_`-separated segment is the id's, longest first as datasets() orders them. A dataset name
   * prefixes the id followed by `_` only if their first segments agree, so no match is lost.
   */
  private candidates(domain: string, id: string): readonly string[] {
    let buckets = this.bucketsByDomain.get(domain);
    if (!buckets) {
      buckets = new Map();
      for (const ds of this.datasets(domain)) {
        const head = firstSegment(ds);
        let b = buckets.get(head);
        if (!b) buckets.set(head, (b = []));
        b.push(ds);
      }
      this.bucketsByDomain.set(domain, buckets);
    }
    return buckets.get(firstSegment(id)) ?? NONE;
  }

  private scp(domain: string, dataset: string): ScpTable {
    const key = `${domain}/${dataset}`;
    let table = this.scps.get(key);
    if (!table) {
      const rel = `scp_files/${domain}/${dataset}.scp`;
      const spilled = (this.files.stat(rel)?.size ?? 0) > this.scpSpillBytes ? spillTable(this.files, rel) : undefined;
      if (spilled) {
        table = spilled.table;
        this.scpHashes.set(key, spilled.digest);
      } else {
        let bytes: Buffer;
        const got = this.files.read(rel);
        if (got.ok) bytes = got.bytes;
        else {
          // An unreadable scp (or a FIFO, a directory) lists nothing; its ids are quarantined as unresolved, naming it.
          const why = `${rel} (${got.detail})`;
          if (!this.unreadable.includes(why)) this.unreadable.push(why);
          bytes = Buffer.alloc(0);
        }
        // A digest, not the size: an edited mapping of the same length must still rebuild its users.
        this.scpHashes.set(key, digest(bytes));
        table = mapTable(bytes);
      }
      this.scps.set(key, table);
    }
    return table;
  }

  /** The scp path of an audio id, searching the record's domain first, then the others. */
  private lookup(domain: string, id: string): { path: string; scp: string } | undefined {
    // Once per audio reference in the corpus: no arrays or prefix strings built per call.
    const found = this.lookupIn(domain, id);
    if (found !== undefined) return found;
    for (const d of DOMAIN_ORDER) {
      if (d === domain) continue;
      const f = this.lookupIn(d, id);
      if (f !== undefined) return f;
    }
    return undefined;
  }

  private lookupIn(d: string, id: string): { path: string; scp: string } | undefined {
    for (const ds of this.candidates(d, id)) {
      if (!(id.startsWith(ds) && id.charCodeAt(ds.length) === 0x5f /* _ */)) continue;
      const path = this.scp(d, ds).get(id);
      if (path !== undefined) return { path, scp: `${d}/${ds}` };
    }
    return undefined;
  }

  resolve(domain: string, id: string): Resolved {
    const found = this.lookup(domain, id);
    if (found === undefined) {
      const note = this.unreadable.length > 0 ? `; unreadable: ${this.unreadable.join(', ')}` : '';
      return { ok: false, reason: 'audio_id_unresolved', detail: `audio id ${id} is in no .scp file${note}` };
    }
    const cacheKey = `${found.scp}\u0000${found.path}`;
    const cached = this.npyCache.get(cacheKey);
    if (cached) return cached;
    const result = this.load(found.path, `scp_files/${found.scp}.scp`, this.scpHashes.get(found.scp) ?? '');
    this.npyCache.set(cacheKey, result);
    return result;
  }

  /**
   * Codebook counts of up to `perScp` clips from the start of every `.scp` file (in name order):
   * a deterministic sample for inferring the corpus's count. A file too large to hold is read
   * only as far as the sample goes, its clips in line order.
   */
  sampleCodebooks(perScp: number): number[] {
    const counts: number[] = [];
    for (const d of ['audio', 'music', 'speech']) {
      for (const ds of [...this.datasets(d)].sort()) {
        let taken = 0;
        const rel = `scp_files/${d}/${ds}.scp`;
        const large = (this.files.stat(rel)?.size ?? 0) > this.scpSpillBytes;
        for (const path of large ? scpPaths(this.files, rel) : this.scp(d, ds).paths()) {
          if (taken >= perScp) break;
          const r = this.load(path, `scp_files/${d}/${ds}.scp`, '');
          if (r.ok) {
            counts.push(r.npy.codebooks);
            taken++;
          }
        }
      }
    }
    return counts;
  }

  /**
   * Names a shard's lines before they are resolved, so that a corpus on S3 fetches their clips
   * ahead, PREFETCH_AHEAD at a time, instead of waiting one round trip per clip. Only a hint: the
   * ids come from the raw lines, whatever their records turn out to be; a directory ignores it.
   */
  expect(lines: readonly string[]): void {
    this.upcoming = [];
    this.issued = 0;
    this.loaded = 0;
    if (!this.files.prefetch) return;
    const seen = new Set<string>();
    for (const line of lines) {
      for (const part of splitAudioRefs(line)) {
        const found = part.kind === 'audio' ? this.lookup('speech', part.id) : undefined;
        if (!found || this.npyCache.has(`${found.scp}\u0000${found.path}`)) continue;
        const at = this.npyPath(found.path);
        if (!at.ok || seen.has(at.rel)) continue;
        seen.add(at.rel);
        this.upcoming.push(at.rel);
      }
    }
    this.topUp();
  }

  /** Keeps up to PREFETCH_AHEAD of the expected clips in flight, topped up half a window at a time. */
  private topUp(): void {
    if (this.issued >= this.upcoming.length || this.issued - this.loaded > PREFETCH_AHEAD / 2) return;
    const next = this.upcoming.slice(this.issued, this.loaded + PREFETCH_AHEAD);
    this.issued += next.length;
    this.files.prefetch?.(next);
  }

  /** Where an scp path's codes are (`audio_tokens/….npy`), or why it is refused unread. */
  private npyPath(
    scpPath: string,
  ): { ok: true; file: string; rel: string } | { ok: false; reason: QuarantineReason; detail: string } {
    const mapped = scpRelativePath(scpPath, this.audioRoots);
    if (!mapped.ok) return { ok: false, reason: 'absolute_path', detail: mapped.detail };
    const npyRel = mapped.rel.replace(/\.[^./\\]*$/, '') + '.npy';
    // Resolved against a root of its own, so `..` cannot climb out of audio_tokens/ on disk or on S3.
    const inside = posix.resolve('/audio_tokens', npyRel);
    if (mapped.rel.startsWith('/') || !inside.startsWith('/audio_tokens/')) {
      return { ok: false, reason: 'path_escape', detail: `scp path ${scpPath} escapes the corpus root; refused` };
    }
    return { ok: true, file: `audio_tokens/${npyRel}`, rel: inside.slice(1) };
  }

  private load(scpPath: string, scp: string, scpHash: string): Resolved {
    const at = this.npyPath(scpPath);
    if (!at.ok) return at;
    const { file } = at;
    this.loaded++;
    this.topUp();
    // Only a regular file is read (a FIFO here would block the indexer forever), never one a symlink takes outside the corpus.
    const got = this.files.readInside(at.rel);
    if (!got.ok) {
      if (got.why === 'missing')
        return { ok: false, reason: 'npy_missing', detail: `audio tokens ${file} do not exist` };
      if (got.why === 'escape')
        return { ok: false, reason: 'path_escape', detail: `${file} is a symlink leaving the corpus root; refused` };
      return {
        ok: false,
        reason: got.why === 'not_regular' ? 'not_regular_file' : 'npy_missing',
        detail: `${file}: ${got.detail}`,
      };
    }
    try {
      const npy = parseNpy(got.bytes);
      return { ok: true, npy, file, size: got.size, mtimeMs: got.mtimeMs, scp, scpHash };
    } catch (err) {
      const detail = err instanceof NpyFormatError ? err.message : String(err);
      return { ok: false, reason: 'npy_malformed', detail: `${file}: ${detail}` };
    }
  }
}
