/**
 * The spilled form of an ScpTable, for `.scp` files too large to hold as a Map: the file is read
 * streaming into key-range buckets on disk, each sorted alone into one table sorted by a 64-bit
 * hash of the id, with the ids and paths in a second file; memory keeps one key per block.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { key64 } from '../util/hash.js';
import type { CorpusFiles } from './corpus-files.js';
import { lines, parseLine, type LoadedScp, type ScpTable } from './scp-table.js';

/** Entries of the spilled table per in-memory key (a block: one read of 4 KB). */
const BLOCK = 256;
/** int32s per entry: key hi, key lo, offset of the strings (low, high 32 bits). */
const ENTRY = 4;
/** Source bytes per key-range bucket of the spill: about 300k entries, 4.5 MB to sort. */
const BUCKET_SOURCE_BYTES = 16 << 20;
/** Entries a bucket buffers before appending them to its file. */
const BUCKET_CHUNK = 1024;

/** Appends through a buffer to a file descriptor. */
class Appender {
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  written = 0;
  constructor(readonly fd: number) {}
  write(b: Uint8Array): void {
    if (this.used + b.length > this.buf.length) this.flush();
    if (b.length > this.buf.length) writeAll(this.fd, b);
    else {
      this.buf.set(b, this.used);
      this.used += b.length;
    }
    this.written += b.length;
  }
  flush(): void {
    writeAll(this.fd, this.buf.subarray(0, this.used));
    this.used = 0;
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  for (let at = 0; at < b.length;) at += writeSync(fd, b, at, b.length - at);
}

function readAt(fd: number, buf: Buffer, length: number, position: number): void {
  for (let at = 0; at < length;) {
    const n = readSync(fd, buf, at, length - at, position + at);
    if (n === 0) throw new Error(`scp spill file ends early at byte ${position + at}`);
    at += n;
  }
}

/** A file created in `dir` and unlinked at once: it lives as long as its descriptor, so no run leaves it behind. */
function anonymousFile(dir: string, name: string): number {
  const path = join(dir, name);
  const fd = openSync(path, 'w+');
  unlinkSync(path);
  return fd;
}

/** (hi, lo) signed order of two keys. */
const cmpKey = (ahi: number, alo: number, bhi: number, blo: number): number => ahi - bhi || alo - blo;

class SpilledTable implements ScpTable {
  private readonly block = Buffer.allocUnsafe(BLOCK * ENTRY * 4);
  private readonly str = Buffer.allocUnsafe(512);
  readonly memoryBytes: number;

  constructor(
    private readonly tableFd: number,
    private readonly stringsFd: number,
    private readonly entries: number,
    /** The key of every block's first entry, hi and lo interleaved. */
    private readonly fences: Int32Array,
    private readonly stringBytes: number,
  ) {
    // Its read buffers and keys; the files are on disk.
    this.memoryBytes = (64 << 10) + fences.byteLength;
  }

  /** The id and path stored at `off` in the strings file (length-prefixed: u32 id bytes, u32 path bytes). */
  private strings(off: number): [Buffer, Buffer] {
    const head = Math.min(this.str.length, this.stringBytes - off);
    readAt(this.stringsFd, this.str, head, off);
    const idLen = this.str.readUInt32LE(0);
    const pathLen = this.str.readUInt32LE(4);
    let b = this.str;
    if (8 + idLen + pathLen > head) {
      b = Buffer.allocUnsafe(8 + idLen + pathLen);
      readAt(this.stringsFd, b, b.length, off);
    }
    return [b.subarray(8, 8 + idLen), b.subarray(8 + idLen, 8 + idLen + pathLen)];
  }

  get(id: string): string | undefined {
    const [lo, hi] = key64(id);
    const blocks = this.fences.length / 2;
    // The last block starting below the key: entries equal to it begin there or later.
    let a = 0;
    let z = blocks;
    while (a < z) {
      const m = (a + z) >> 1;
      if (cmpKey(this.fences[m * 2]!, this.fences[m * 2 + 1]!, hi, lo) < 0) a = m + 1;
      else z = m;
    }
    let found: string | undefined;
    let want: Buffer | undefined;
    for (let b = Math.max(0, a - 1); b < blocks; b++) {
      const n = Math.min(BLOCK, this.entries - b * BLOCK);
      readAt(this.tableFd, this.block, n * ENTRY * 4, b * BLOCK * ENTRY * 4);
      const e = new Int32Array(this.block.buffer, this.block.byteOffset, n * ENTRY);
      for (let i = 0; i < n; i++) {
        const c = cmpKey(e[i * ENTRY]!, e[i * ENTRY + 1]!, hi, lo);
        if (c < 0) continue;
        if (c > 0) return found;
        const off = (e[i * ENTRY + 2]! >>> 0) + (e[i * ENTRY + 3]! >>> 0) * 0x100000000;
        const [idBytes, pathBytes] = this.strings(off);
        want ??= Buffer.from(id, 'utf8');
        // Equal keys are in line order: the last matching line wins.
        if (idBytes.equals(want)) found = pathBytes.toString('utf8');
      }
    }
    return found;
  }

  *paths(): Iterable<string> {
    for (let off = 0; off < this.stringBytes;) {
      const [idBytes, pathBytes] = this.strings(off);
      off += 8 + idBytes.length + pathBytes.length;
      yield pathBytes.toString('utf8');
    }
  }

  close(): void {
    closeSync(this.tableFd);
    closeSync(this.stringsFd);
  }
}

/**
 * Reads `rel` streaming into a spilled table (temporary files under the OS temp directory, gone
 * when the table is closed or the process ends), in key-range buckets of about `bucketSourceBytes`
 * of the file each. Undefined when the file cannot be opened (the
 * caller reads it the ordinary way, which names the problem).
 */
export function spillTable(
  files: CorpusFiles,
  rel: string,
  bucketSourceBytes = BUCKET_SOURCE_BYTES,
): LoadedScp | undefined {
  const o = files.open(rel);
  if (!o.ok) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'flanstream-scp-'));
  const hash = createHash('sha256');
  const B = Math.max(1, Math.ceil(o.size / bucketSourceBytes));
  const bucketFile = (b: number): string => join(dir, `bucket-${b}`);
  const pending = Array.from({ length: B }, () => ({
    chunk: new Int32Array(BUCKET_CHUNK * ENTRY),
    used: 0,
    any: false,
  }));
  const flushBucket = (b: number): void => {
    const p = pending[b]!;
    if (p.used === 0) return;
    const fd = openSync(bucketFile(b), 'a');
    try {
      writeAll(fd, new Uint8Array(p.chunk.buffer, 0, p.used * 4));
    } finally {
      closeSync(fd);
    }
    p.used = 0;
    p.any = true;
  };
  const stringsFd = anonymousFile(dir, 'strings');
  const tableFd = anonymousFile(dir, 'table');
  const strings = new Appender(stringsFd);
  const head = Buffer.allocUnsafe(8);
  let entries = 0;
  const addLine = (line: string): void => {
    const e = parseLine(line);
    if (!e) return;
    const id = Buffer.from(e[0], 'utf8');
    const path = Buffer.from(e[1], 'utf8');
    const off = strings.written;
    head.writeUInt32LE(id.length, 0);
    head.writeUInt32LE(path.length, 4);
    strings.write(head);
    strings.write(id);
    strings.write(path);
    const [lo, hi] = key64(e[0]);
    const b = Math.min(B - 1, Math.floor(((hi + 2 ** 31) * B) / 2 ** 32));
    const p = pending[b]!;
    p.chunk.set([hi, lo, (off % 0x100000000) | 0, Math.floor(off / 0x100000000)], p.used);
    p.used += ENTRY;
    if (p.used === p.chunk.length) flushBucket(b);
    entries++;
  };
  try {
    try {
      for (const line of lines(o.chunks(), (c) => hash.update(c))) addLine(line);
    } finally {
      o.close();
    }
    strings.flush();
    const table = new Appender(tableFd);
    const fences: number[] = [];
    let placed = 0;
    for (let b = 0; b < B; b++) {
      flushBucket(b);
      if (!pending[b]!.any) continue;
      const bytes = readFileSync(bucketFile(b));
      rmSync(bucketFile(b), { force: true });
      const q = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
      const n = q.length / ENTRY;
      // Stable: equal keys stay in line order (the index breaks ties).
      const order = Uint32Array.from({ length: n }, (_, i) => i).sort(
        (x, y) => cmpKey(q[x * ENTRY]!, q[x * ENTRY + 1]!, q[y * ENTRY]!, q[y * ENTRY + 1]!) || x - y,
      );
      const sorted = new Int32Array(q.length);
      order.forEach((k, i) => {
        sorted.set(q.subarray(k * ENTRY, k * ENTRY + ENTRY), i * ENTRY);
        if ((placed + i) % BLOCK === 0) fences.push(q[k * ENTRY]!, q[k * ENTRY + 1]!);
      });
      placed += n;
      table.write(new Uint8Array(sorted.buffer));
    }
    table.flush();
    return {
      table: new SpilledTable(tableFd, stringsFd, entries, Int32Array.from(fences), strings.written),
      digest: hash.digest('hex').slice(0, 32),
    };
  } catch (err) {
    closeSync(tableFd);
    closeSync(stringsFd);
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
