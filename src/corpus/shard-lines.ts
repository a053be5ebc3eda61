import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { basename, dirname, resolve } from 'node:path';
import { constants, createGunzip, gunzipSync } from 'node:zlib';
import { LineSplitter } from './line-splitter.js';
import type { CorpusFiles, Opened } from './corpus-files.js';
import { LocalCorpusFiles } from './local-corpus-files.js';
import type { QuarantineEntry } from './quarantine.js';

export interface ShardLine {
  /** 1-based line number in the (decompressed) file. */
  readonly line: number;
  readonly text: string;
  /** The file's last line had no newline: a parse failure there means truncation. */
  readonly unterminated: boolean;
}

export interface ShardLines {
  readonly lines: ShardLine[];
  readonly issues: QuarantineEntry[];
  /** Bytes of JSONL after decompression. */
  readonly bytes: number;
  /** sha256 of the file as stored (compressed or not), taken while reading it. */
  readonly sourceHash: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Compressed size up to which a gzip shard is inflated in one call, and that call's output cap. */
const SYNC_GZIP_BYTES = 4 << 20;
const SYNC_GUNZIP_OUTPUT = 64 << 20;

/**
 * Feeds the file's bytes, decompressed if it is gzip, to `push`, streaming: no buffer ever holds
 * the whole file. Returns the damage of a gzip stream, if any; what decompressed before the
 * damage has been pushed (the complete lines there are good records).
 */
async function inflateInto(
  chunks: () => Iterable<Buffer>,
  size: number,
  gz: boolean,
  hash: ReturnType<typeof createHash>,
  push: (b: Buffer) => void,
): Promise<string | undefined> {
  if (gz && size <= SYNC_GZIP_BYTES) {
    // Most shards are small: inflating them in one synchronous call saves the zlib stream's
    // thread-pool round trips (which dominate under CPU contention). Output is capped, so a small
    // file that inflates hugely, or a damaged one, takes the streaming path below.
    const raw = Buffer.concat([...chunks()]);
    try {
      const data = gunzipSync(raw, { maxOutputLength: SYNC_GUNZIP_OUTPUT });
      hash.update(raw);
      push(data);
      return undefined;
    } catch {
      return inflateBuffer(raw, hash, push);
    }
  }
  if (!gz) {
    for (const c of chunks()) {
      hash.update(c);
      push(c);
    }
    return undefined;
  }
  return inflateChunks(chunks(), hash, push);
}

function inflateBuffer(
  raw: Buffer,
  hash: ReturnType<typeof createHash>,
  push: (b: Buffer) => void,
): Promise<string | undefined> {
  return inflateChunks([raw], hash, push);
}

async function inflateChunks(
  input: Iterable<Buffer>,
  hash: ReturnType<typeof createHash>,
  push: (b: Buffer) => void,
): Promise<string | undefined> {
  const gunzip = createGunzip();
  let damage: string | undefined;
  const done = new Promise<void>((resolve) => {
    gunzip.on('data', push);
    gunzip.on('error', (err) => {
      damage = err.message;
      resolve();
    });
    gunzip.on('end', resolve);
  });
  for (const c of input) {
    hash.update(c);
    if (damage !== undefined) continue; // still hashed: the source hash covers the whole file
    if (!gunzip.write(c)) await Promise.race([once(gunzip, 'drain'), done]);
  }
  if (damage === undefined) {
    // Flush what the last input decompressed before ending: at the end of a truncated stream zlib
    // reports the damage and would drop the output of that final call.
    await Promise.race([new Promise<void>((resolve) => gunzip.flush(constants.Z_SYNC_FLUSH, () => resolve())), done]);
    if (damage === undefined) gunzip.end();
  }
  await done;
  return damage;
}

/**
 * Splits a JSONL shard (plain or gzip) into lines, streaming and holding at most one line beyond
 * the ones kept, and quarantines byte-level problems: a file that is not a regular file, invalid
 * UTF-8, NUL bytes and over-long lines. A BOM and CRLF line endings are accepted.
 */
export async function readShardLines(absPath: string, file: string, maxLineBytes: number): Promise<ShardLines> {
  return readOpenedLines(new LocalCorpusFiles(dirname(resolve(absPath))).open(basename(absPath)), file, maxLineBytes);
}

/** readShardLines of a corpus's shard (`source`, relative to the corpus), on disk or on S3. */
export function readCorpusShard(files: CorpusFiles, source: string, maxLineBytes: number): Promise<ShardLines> {
  return readOpenedLines(files.open(source), source, maxLineBytes);
}

async function readOpenedLines(opened: Opened, file: string, maxLineBytes: number): Promise<ShardLines> {
  const issues: QuarantineEntry[] = [];
  const hash = createHash('sha256');
  if (!opened.ok) {
    issues.push({
      file,
      line: 0,
      reason: opened.why === 'not_regular' ? 'not_regular_file' : 'unreadable_file',
      detail: opened.detail,
    });
    return { lines: [], issues, bytes: 0, sourceHash: `unreadable: ${opened.detail}` };
  }
  const lines: ShardLine[] = [];
  const splitter = new LineSplitter(maxLineBytes, {
    line(line, bytes, unterminated) {
      if (bytes.includes(0)) {
        issues.push({ file, line, reason: 'nul_byte', detail: 'line contains a NUL byte' });
        return;
      }
      let text: string;
      try {
        text = utf8.decode(bytes);
      } catch {
        issues.push({ file, line, reason: 'invalid_utf8', detail: 'line is not valid UTF-8' });
        return;
      }
      if (text.trim() !== '') lines.push({ line, text, unterminated });
    },
    tooLong(line, bytes) {
      issues.push({
        file,
        line,
        reason: 'line_too_long',
        detail: `line of ${bytes} bytes exceeds the ${maxLineBytes}-byte limit`,
      });
    },
  });
  let damage: string | undefined;
  try {
    // A zero-byte .gz is an empty file, not a damaged stream.
    damage = await inflateInto(opened.chunks, opened.size, file.endsWith('.gz') && opened.size > 0, hash, (b) =>
      splitter.push(b),
    );
  } finally {
    opened.close();
  }
  splitter.end();
  if (damage !== undefined) {
    issues.push({
      file,
      line: 0,
      reason: 'truncated_gzip',
      detail: `gzip stream is damaged or truncated (${damage}); kept ${splitter.bytes} decompressed bytes`,
    });
  } else if (splitter.bytes === 0) {
    issues.push({ file, line: 0, reason: 'empty_file', detail: 'the shard holds no records' });
  }
  // Issues in line order, the file-level ones first (as the report lists them).
  issues.sort((a, b) => a.line - b.line);
  return { lines, issues, bytes: splitter.bytes, sourceHash: hash.digest('hex') };
}
