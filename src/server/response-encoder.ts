import type { Batch__Output } from '../../proto/generated/flanstream/v1/Batch.js';
import type { EvalExample__Output } from '../../proto/generated/flanstream/v1/EvalExample.js';
import type { Stats__Output } from '../../proto/generated/flanstream/v1/Stats.js';
import type { StreamEnd__Output } from '../../proto/generated/flanstream/v1/StreamEnd.js';
import type { WireResponse } from '../stream/wire-types.js';
import { tokensWithRoom } from '../stream/batch-builder.js';
import { Writer } from './proto-writer.js';
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
