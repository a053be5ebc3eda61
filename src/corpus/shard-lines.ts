import { readFileSync } from 'node:fs';
import { constants, gunzipSync } from 'node:zlib';
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
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decompress(raw: Buffer, file: string, issues: QuarantineEntry[]): Buffer {
  try {
    return gunzipSync(raw);
  } catch (err) {
    // Salvage what decompresses: the complete lines before the damage are good records.
    let partial: Buffer;
    try {
      partial = gunzipSync(raw, { finishFlush: constants.Z_SYNC_FLUSH });
    } catch {
      partial = Buffer.alloc(0);
    }
    issues.push({ file, line: 0, reason: 'truncated_gzip', detail: `gzip stream is damaged or truncated (${(err as Error).message}); kept ${partial.length} decompressed bytes` });
    return partial;
  }
}

/**
 * Splits a JSONL shard (plain or gzip) into lines, quarantining byte-level problems: invalid
 * UTF-8, NUL bytes and over-long lines. A BOM and CRLF line endings are accepted.
 */
export function readShardLines(absPath: string, file: string, maxLineBytes: number): ShardLines {
  const issues: QuarantineEntry[] = [];
  let raw: Buffer;
  try {
    raw = readFileSync(absPath);
  } catch (err) {
    issues.push({ file, line: 0, reason: 'unreadable_file', detail: String((err as Error).message) });
    return { lines: [], issues, bytes: 0 };
  }
  // A zero-byte .gz is an empty file, not a damaged stream.
  const data = file.endsWith('.gz') && raw.length > 0 ? decompress(raw, file, issues) : raw;
  if (data.length === 0 && !issues.some((i) => i.reason === 'truncated_gzip')) {
    issues.push({ file, line: 0, reason: 'empty_file', detail: 'the shard holds no records' });
  }
  const lines: ShardLine[] = [];
  let start = data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf ? 3 : 0;
  let lineNo = 0;
  while (start < data.length) {
    lineNo++;
    let end = data.indexOf(0x0a, start);
    const unterminated = end < 0;
    if (unterminated) end = data.length;
    let stop = end;
    if (stop > start && data[stop - 1] === 0x0d) stop--;
    const bytes = data.subarray(start, stop);
    start = end + 1;
    if (bytes.length > maxLineBytes) {
      issues.push({ file, line: lineNo, reason: 'line_too_long', detail: `line of ${bytes.length} bytes exceeds the ${maxLineBytes}-byte limit` });
      continue;
    }
    if (bytes.includes(0)) {
      issues.push({ file, line: lineNo, reason: 'nul_byte', detail: 'line contains a NUL byte' });
      continue;
    }
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      issues.push({ file, line: lineNo, reason: 'invalid_utf8', detail: 'line is not valid UTF-8' });
      continue;
    }
    if (text.trim() === '') continue;
    lines.push({ line: lineNo, text, unterminated });
  }
  return { lines, issues, bytes: data.length };
}
