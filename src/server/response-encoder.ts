import type { Batch__Output } from '../../proto/generated/flanstream/v1/Batch.js';
import type { EvalExample__Output } from '../../proto/generated/flanstream/v1/EvalExample.js';
import type { Stats__Output } from '../../proto/generated/flanstream/v1/Stats.js';
import type { StreamEnd__Output } from '../../proto/generated/flanstream/v1/StreamEnd.js';
import type { WireResponse } from '../stream/wire-types.js';
import { tokensWithRoom } from '../stream/batch-builder.js';
import { loadDefinition, messageFields } from './proto.js';

/**
 * StreamResponse encoded by hand into one buffer of the exact size. protobufjs (proto-loader)
 * first converts the plain object into a message object (`fromObject`) and then grows its own
 * writer, copying the 128 KB of tokens twice on the way: ~110 µs of the server's ~600 µs per
 * 8 × 4096 batch. The schema is not restated here: message shapes are the types generated from
 * proto/flanstream/v1/data_service.proto (proto/generated), field numbers are read from the
 * loaded .proto; only each field's wire kind is written down, once per field, checked against
 * both. test/ops/response-encoder.test.ts decodes the output with the .proto and compares.
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

/** Writes one field: `v` under field number `field`, omitted when proto3 would omit it. */
type Put<V> = (w: Writer, field: number, v: V) => void;
/** A writer for every field of a generated message type and for no other (a proto change fails to compile here). */
type Layout<T> = { readonly [K in keyof T]-?: Put<T[K]> };

const uint: Put<number> = (w, n, v) => w.uint(n, v);
const uints: Put<number[]> = (w, n, v) => w.packedUints(n, v);
const doubles: Put<number[]> = (w, n, v) => w.packedDoubles(n, v);
const bytes: Put<Buffer> = (w, n, v) => w.bytes(n, v);
const str: Put<string> = (w, n, v) => w.string(n, v);
const strs: Put<string[]> = (w, n, v) => {
  for (const s of v) w.string(n, s, true);
};
const message =
  <T>(body: (w: Writer, m: T) => void): Put<T | null> =>
  (w, n, v) => {
    if (v) w.message(n, (m) => body(m, v));
  };
const messages =
  <T>(body: (w: Writer, m: T) => void): Put<T[]> =>
  (w, n, v) => {
    for (const x of v) w.message(n, (m) => body(m, x));
  };

/**
 * A message's writer: its fields in field-number order (proto3 canonical form), the numbers read
 * from the .proto. Fails at load when the .proto and the layout disagree on the field names.
 */
function writerOf<T>(type: string, layout: Layout<T>): (w: Writer, msg: T) => void {
  const fields = messageFields(PROTO, `flanstream.v1.${type}`);
  const put = layout as Record<string, Put<unknown>>;
  const known = new Set(fields.map((f) => f.name));
  const missing = [
    ...fields.map((f) => f.name).filter((k) => !put[k]),
    ...Object.keys(put).filter((k) => !known.has(k)),
  ];
  if (missing.length > 0)
    throw new Error(`response-encoder: ${type} fields ${missing.join(', ')} differ between the .proto and the encoder`);
  const steps = fields.map((f) => [f.number, put[f.name]!, f.name] as const);
  return (w, msg) => {
    for (const [n, p, k] of steps) p(w, n, (msg as Record<string, unknown>)[k]);
  };
}

const PROTO = loadDefinition();

const stats = writerOf<Stats__Output>('Stats', {
  taskExamples: uints,
  taskTextTokens: uints,
  taskAudioTokens: uints,
  taskTarget: doubles,
  domainExamples: uints,
  domainTarget: doubles,
  paddingTokens: uint,
  dropped: uint,
  truncated: uint,
  taskDropped: uints,
  taskTruncated: uints,
  sinceUpdateStep: uint,
  taskExamplesSinceUpdate: uints,
  domainExamplesSinceUpdate: uints,
  windowStartStep: uint,
  taskExamplesWindow: uints,
  domainExamplesWindow: uints,
  taskEpochs: uints,
  domainAudioSeconds: doubles,
});

const example = writerOf<EvalExample__Output>('EvalExample', {
  uuid: str,
  task: uint,
  promptTokens: bytes,
  answerTokens: bytes,
  answerText: str,
  answerAudioIds: strs,
});

const batch = writerOf<Batch__Output>('Batch', {
  step: uint,
  rank: uint,
  worldSize: uint,
  batchSize: uint,
  seqLen: uint,
  padId: uint,
  tokens: bytes,
  segRow: uints,
  segOffset: uints,
  segLength: uints,
  segTask: uints,
  segDomain: uints,
  segTextTokens: uints,
  segAudioTokens: uints,
  segTurns: uints,
  uuids: strs,
  turnTask: uints,
  lossSpans: uints,
  resumeToken: bytes,
  stats: message(stats),
  heldoutFingerprint: str,
  examples: messages(example),
  totalSteps: uint,
  taskDropped: uints,
  droppedFitSeqLen: uint,
});

const end = writerOf<StreamEnd__Output>('StreamEnd', {
  taskExamples: uints,
  totalTaskExamples: uints,
  examples: uint,
  totalExamples: uint,
  resumeToken: bytes,
  reason: str,
  taskDropped: uints,
});

const KIND = Object.fromEntries(
  messageFields(PROTO, 'flanstream.v1.StreamResponse').map((f) => [f.name, f.number]),
) as Record<'batch' | 'end', number>;

function response(w: Writer, r: WireResponse): void {
  if ('batch' in r) w.message(KIND.batch, (m) => batch(m, r.batch));
  else w.message(KIND.end, (m) => end(m, r.end));
}

/**
 * Whether to write a response of `size` bytes around a batch's tokens in place (found at `at`), when
 * batch-builder.ts made their buffer with room before and after them and no response was written
 * around them yet (it leaves `tokensWithRoom` now: that response's bytes may be in gRPC's hands);
 * otherwise it is written into a new buffer.
 */
function inPlace(tokens: Uint8Array | null, at: number, size: number): tokens is Uint8Array {
  return (
    tokens !== null &&
    at >= 0 &&
    tokens.byteOffset >= at &&
    tokens.byteOffset - at + size <= tokens.buffer.byteLength &&
    tokensWithRoom.delete(tokens.buffer)
  );
}

/** The protobuf bytes of a StreamResponse. */
export function encodeStreamResponse(r: WireResponse): Buffer {
  const sizes: number[] = [];
  const tokens = 'batch' in r ? r.batch.tokens : null;
  const counter = new Writer(null, sizes, tokens);
  response(counter, r);
  const placed = inPlace(tokens, counter.inPlaceAt, counter.pos);
  const out = placed
    ? Buffer.from(tokens.buffer, tokens.byteOffset - counter.inPlaceAt, counter.pos)
    : Buffer.allocUnsafe(counter.pos);
  const w = new Writer(out, sizes, placed ? tokens : null);
  response(w, r);
  if (w.pos !== out.length) throw new Error(`StreamResponse encoder wrote ${w.pos} of ${out.length} bytes`);
  return out;
}
