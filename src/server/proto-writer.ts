/**
 * The protobuf wire writer behind response-encoder.ts: varints, tags, bytes, strings, packed
 * fields and nested messages, written in two passes (count, then write) into one buffer of the
 * exact size, with a batch's tokens optionally already in place in that buffer.
 */
const VARINT = 0;
const LEN = 2;

/**
 * Runs twice over the same message: first counting (`buf` null), recording the length of every
 * nested message and packed field in `sizes` in the order they occur, then writing, reading the
 * lengths back in the same order. Sizes and bytes come from the same code, and every value is
 * visited once per pass.
 */
export class Writer {
  pos = 0;
  private next = 0;
  /** Where the counting pass met `inPlace`'s bytes; -1 if it did not. */
  inPlaceAt = -1;
  constructor(
    private readonly buf: Buffer | null,
    private readonly sizes: number[],
    /** Counting: bytes to find the position of; writing: bytes already where they belong in `buf` (a batch's tokens). */
    private readonly inPlace: Uint8Array | null = null,
  ) {}

  varint(n: number): void {
    const buf = this.buf;
    if (!buf) {
      this.pos += varintSize(n);
      return;
    }
    let pos = this.pos;
    if (n >>> 0 === n) {
      // Below 2^32 (nearly every value): shifts, not float division.
      while (n > 127) {
        buf[pos++] = (n & 127) | 128;
        n >>>= 7;
      }
    } else {
      while (n >= 128) {
        buf[pos++] = (n % 128) | 128;
        n = Math.floor(n / 128);
      }
    }
    buf[pos++] = n;
    this.pos = pos;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  raw(bytes: Uint8Array): void {
    const buf = this.buf;
    if (!buf) {
      if (bytes === this.inPlace) this.inPlaceAt = this.pos;
    } else if (bytes !== this.inPlace) {
      buf.set(bytes, this.pos);
    } else if (bytes.byteOffset !== buf.byteOffset + this.pos) {
      // Copying within the buffer would shift the very bytes being written around.
      throw new Error(
        `StreamResponse encoder: bytes in place at ${bytes.byteOffset - buf.byteOffset}, expected at ${this.pos}`,
      );
    }
    this.pos += bytes.length;
  }

  uint(field: number, n: number): void {
    if (n === 0) return;
    this.tag(field, VARINT);
    this.varint(n);
  }

  bytes(field: number, b: Uint8Array): void {
    if (b.length === 0) return;
    this.tag(field, LEN);
    this.varint(b.length);
    this.raw(b);
  }

  string(field: number, s: string, always = false): void {
    if (s.length === 0 && !always) return;
    const n = Buffer.byteLength(s, 'utf8');
    this.tag(field, LEN);
    this.varint(n);
    if (this.buf) this.buf.write(s, this.pos, n, 'utf8');
    this.pos += n;
  }

  /** Written without `delimited`'s closure: per batch there are ~30 of these, each visited twice. */
  packedUints(field: number, xs: readonly number[]): void {
    if (xs.length === 0) return;
    this.tag(field, LEN);
    if (this.buf) {
      this.varint(this.sizes[this.next++]!);
      for (let i = 0; i < xs.length; i++) this.varint(xs[i]!);
      return;
    }
    let len = 0;
    for (let i = 0; i < xs.length; i++) len += varintSize(xs[i]!);
    this.sizes.push(len);
    this.varint(len);
    this.pos += len;
  }

  packedDoubles(field: number, xs: readonly number[]): void {
    if (xs.length === 0) return;
    this.tag(field, LEN);
    this.varint(xs.length * 8);
    const buf = this.buf;
    if (buf) for (let i = 0; i < xs.length; i++) buf.writeDoubleLE(xs[i]!, this.pos + 8 * i);
    this.pos += xs.length * 8;
  }

  message(field: number, body: (w: Writer) => void): void {
    this.delimited(field, () => body(this));
  }

  /** A length-delimited field whose length is only known once `body` has run. */
  private delimited(field: number, body: () => void): void {
    this.tag(field, LEN);
    if (this.buf) {
      this.varint(this.sizes[this.next++]!);
      body();
      return;
    }
    const slot = this.sizes.push(0) - 1;
    const start = this.pos;
    const placed = this.inPlaceAt;
    body();
    const len = this.pos - start;
    this.sizes[slot] = len;
    const before = this.pos;
    this.varint(len);
    // The length is counted after its body but written before it: move a position found inside.
    if (placed < 0 && this.inPlaceAt >= 0) this.inPlaceAt += this.pos - before;
  }
}

/** Bytes of `n` as an unsigned varint; a value that is not one (negative, fractional, unsafe) is refused. */
function varintSize(n: number): number {
  if (n >>> 0 !== n && !(Number.isSafeInteger(n) && n >= 0))
    throw new RangeError(`cannot encode ${n} as an unsigned varint`);
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : n < 268435456 ? 4 : varintBytes(n);
}

function varintBytes(n: number): number {
  let len = 1;
  for (; n >= 128; len++) n = Math.floor(n / 128);
  return len;
}
