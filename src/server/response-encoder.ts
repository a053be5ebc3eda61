import type { WireBatch, WireEnd, WireExample, WireResponse, WireStats } from '../stream/wire-types.js';

/**
 * StreamResponse encoded by hand into one buffer of the exact size. protobufjs (proto-loader)
 * first converts the plain object into a message object (`fromObject`) and then grows its own
 * writer, copying the 128 KB of tokens twice on the way: ~110 µs of the server's ~600 µs per
 * 8 × 4096 batch. The field numbers below are those of proto/flanstream/v1/data_service.proto;
 * test/ops/response-encoder.test.ts decodes the output with the .proto and compares.
 * Zero scalars and empty repeated fields are omitted (proto3 canonical form).
 */
const VARINT = 0;
const LEN = 2;

/**
 * Runs twice over the same message: first counting (`buf` null), recording the length of every
 * nested message and packed field in `sizes` in the order they occur, then writing, reading the
 * lengths back in the same order. Sizes and bytes come from the same code, and every value is
 * visited once per pass.
 */
class Writer {
  pos = 0;
  private next = 0;
  constructor(
    private readonly buf: Buffer | null,
    private readonly sizes: number[],
  ) {}

  varint(n: number): void {
    const buf = this.buf;
    if (!buf) {
      if (!(Number.isSafeInteger(n) && n >= 0)) throw new RangeError(`cannot encode ${n} as an unsigned varint`);
      this.pos += n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : n < 268435456 ? 4 : varintBytes(n);
      return;
    }
    while (n >= 128) {
      buf[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    buf[this.pos++] = n;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  raw(bytes: Uint8Array): void {
    this.buf?.set(bytes, this.pos);
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

  packedUints(field: number, xs: readonly number[]): void {
    if (xs.length === 0) return;
    this.delimited(field, () => {
      for (const x of xs) this.varint(x);
    });
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
    body();
    const len = this.pos - start;
    this.sizes[slot] = len;
    this.varint(len);
  }
}

function varintBytes(n: number): number {
  let len = 1;
  for (; n >= 128; len++) n = Math.floor(n / 128);
  return len;
}

function stats(w: Writer, s: WireStats): void {
  w.packedUints(1, s.taskExamples);
  w.packedUints(2, s.taskTextTokens);
  w.packedUints(3, s.taskAudioTokens);
  w.packedDoubles(4, s.taskTarget);
  w.packedUints(5, s.domainExamples);
  w.packedDoubles(6, s.domainTarget);
  w.uint(7, s.paddingTokens);
  w.uint(8, s.dropped);
  w.uint(9, s.truncated);
  w.packedUints(10, s.taskDropped);
  w.packedUints(11, s.taskTruncated);
  w.uint(12, s.sinceUpdateStep);
  w.packedUints(13, s.taskExamplesSinceUpdate);
  w.packedUints(14, s.domainExamplesSinceUpdate);
  w.uint(15, s.windowStartStep);
  w.packedUints(16, s.taskExamplesWindow);
  w.packedUints(17, s.domainExamplesWindow);
  w.packedUints(18, s.taskEpochs);
  w.packedDoubles(30, s.domainAudioSeconds);
}

function example(w: Writer, e: WireExample): void {
  w.string(1, e.uuid);
  w.uint(2, e.task);
  w.bytes(3, e.promptTokens);
  w.bytes(4, e.answerTokens);
  w.string(5, e.answerText);
  for (const id of e.answerAudioIds) w.string(6, id, true);
}

function batch(w: Writer, b: WireBatch): void {
  w.uint(1, b.step);
  w.uint(2, b.rank);
  w.uint(3, b.worldSize);
  w.uint(4, b.batchSize);
  w.uint(5, b.seqLen);
  w.uint(6, b.padId);
  w.bytes(7, b.tokens);
  w.packedUints(8, b.segRow);
  w.packedUints(9, b.segOffset);
  w.packedUints(10, b.segLength);
  w.packedUints(11, b.segTask);
  w.packedUints(12, b.segDomain);
  w.packedUints(13, b.segTextTokens);
  w.packedUints(14, b.segAudioTokens);
  w.packedUints(15, b.segTurns);
  for (const u of b.uuids) w.string(16, u, true);
  w.packedUints(17, b.turnTask);
  w.packedUints(18, b.lossSpans);
  w.bytes(19, b.resumeToken);
  w.message(20, (m) => stats(m, b.stats));
  w.string(21, b.heldoutFingerprint);
  for (const e of b.examples) w.message(22, (m) => example(m, e));
  w.uint(23, b.totalSteps);
}

function end(w: Writer, e: WireEnd): void {
  w.packedUints(1, e.taskExamples);
  w.packedUints(2, e.totalTaskExamples);
  w.uint(3, e.examples);
  w.uint(4, e.totalExamples);
  w.bytes(5, e.resumeToken);
  w.string(6, e.reason);
  w.packedUints(7, e.taskDropped);
}

function response(w: Writer, r: WireResponse): void {
  if ('batch' in r) w.message(1, (m) => batch(m, r.batch));
  else w.message(2, (m) => end(m, r.end));
}

/** The protobuf bytes of a StreamResponse. */
export function encodeStreamResponse(r: WireResponse): Buffer {
  const sizes: number[] = [];
  const counter = new Writer(null, sizes);
  response(counter, r);
  const out = Buffer.allocUnsafe(counter.pos);
  const w = new Writer(out, sizes);
  response(w, r);
  if (w.pos !== out.length) throw new Error(`StreamResponse encoder wrote ${w.pos} of ${out.length} bytes`);
  return out;
}
