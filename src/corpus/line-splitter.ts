/**
 * Splits a byte stream into lines while holding at most one line (up to the line limit): a line
 * longer than the limit is not kept at all, only measured, and reading resumes at the next
 * newline. Offsets are never taken over the whole stream, so a shard that decompresses past
 * 2 GiB (where Node 20's Buffer.indexOf goes negative) splits like any other.
 */
export interface SplitterSink {
  /** A line's bytes without its line ending (a trailing CR is cut). `unterminated`: the stream's last line had no newline. */
  line(lineNo: number, bytes: Buffer, unterminated: boolean): void;
  /** A line over the limit; `bytes` is its length without the line ending. */
  tooLong(lineNo: number, bytes: number): void;
}

export class LineSplitter {
  private readonly max: number;
  private readonly sink: SplitterSink;
  private parts: Buffer[] = [];
  private held = 0;
  /** Bytes of the current line when it outgrew the limit (its parts were let go). */
  private skipped = -1;
  private lineNo = 0;
  private started = false;
  /** Bytes seen in all. */
  bytes = 0;

  constructor(maxLineBytes: number, sink: SplitterSink) {
    this.max = maxLineBytes;
    this.sink = sink;
  }

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let at = 0;
    if (!this.started && chunk.length > 0) {
      this.started = true;
      // A UTF-8 BOM at the start of the file.
      if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) at = 3;
    }
    while (at < chunk.length) {
      const nl = chunk.indexOf(0x0a, at);
      if (nl < 0) {
        this.hold(chunk.subarray(at));
        return;
      }
      // The common case, a whole line inside the chunk, is passed on without a copy.
      if (this.held === 0 && this.skipped < 0) this.line(chunk.subarray(at, nl), false);
      else {
        this.hold(chunk.subarray(at, nl));
        this.emit(false);
      }
      at = nl + 1;
    }
  }

  /** The end of the stream: a last line without a newline is emitted as unterminated. */
  end(): void {
    if (this.held > 0 || this.skipped >= 0) this.emit(true);
  }

  private hold(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.skipped >= 0) {
      this.skipped += piece.length;
      return;
    }
    this.held += piece.length;
    // One byte of slack for the CR of a CRLF ending, which does not count against the limit.
    if (this.held > this.max + 1) {
      this.skipped = this.held;
      this.parts = [];
      this.held = 0;
      return;
    }
    // A copy: the chunk's buffer may be reused by its reader.
    this.parts.push(Buffer.from(piece));
  }

  private emit(unterminated: boolean): void {
    if (this.skipped >= 0) {
      this.sink.tooLong(++this.lineNo, this.skipped);
    } else {
      this.line(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.held), unterminated);
    }
    this.parts = [];
    this.held = 0;
    this.skipped = -1;
  }

  private line(raw: Buffer, unterminated: boolean): void {
    this.lineNo++;
    const bytes = raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.subarray(0, raw.length - 1) : raw;
    if (bytes.length > this.max) this.sink.tooLong(this.lineNo, bytes.length);
    else this.sink.line(this.lineNo, bytes, unterminated);
  }
}
