import { createHash } from 'node:crypto';
import { int32s, segmentColumns } from '../../clients/ts/wire-decode.js';
import type { WireBatch } from '../../clients/ts/wire-types.js';

/**
 * Canonical forms of received batches for comparing streams: a digest per batch (every field, or
 * all but the resume token), rows independent of their position, and the uuids served.
 */

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** A value as JSON with sorted keys and bytes as hex. */
function stable(v: unknown): string {
  if (v instanceof Uint8Array) return JSON.stringify(hex(v));
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/**
 * Every field of a batch in a fixed order (`withToken: false` leaves the resume token out), but
 * for what the first batch of every evaluation call says about the whole set (`taskDropped`,
 * `droppedFitSeqLen`): it belongs to the call, not to the stream, so a resumed call repeats it.
 */
export function canonical(b: WireBatch, withToken = true): string {
  // segAudioFrames is the server's own column for /metrics, never sent: compare what a client sees.
  const { resumeToken, ...rest } = b as WireBatch & { segAudioFrames?: number[] };
  delete rest.segAudioFrames;
  delete (rest as Partial<WireBatch>).taskDropped;
  delete (rest as Partial<WireBatch>).droppedFitSeqLen;
  return stable(withToken ? { ...rest, resumeToken } : rest);
}

/** A digest per batch, for comparing streams byte for byte. */
export function digests(batches: readonly WireBatch[], withToken = true): string[] {
  return batches.map((b) => createHash('sha256').update(canonical(b, withToken)).digest('hex'));
}

/**
 * The rows of a batch, each as a string independent of where the row sits: its segments'
 * tokens, metadata (offset, length, task, domain, token counts, uuids, turn tasks) and loss
 * spans relative to the row's first token. Read with the TS client's decoder.
 */
export function rowsOf(b: WireBatch): string[] {
  const toks = int32s(b.tokens);
  const rows: { segs: unknown[]; spans: number[]; start: number }[] = Array.from({ length: b.batchSize }, () => ({
    segs: [],
    spans: [],
    start: -1,
  }));
  for (const c of segmentColumns(b)) {
    const row = rows[c.row]!;
    if (row.start < 0) row.start = c.start;
    row.segs.push([
      c.offset,
      c.length,
      c.taskIndex,
      c.domainIndex,
      c.textTokens,
      c.audioTokens,
      c.uuids,
      c.turnTaskIndices,
      Array.from(toks.subarray(c.start, c.start + c.length)),
    ]);
    for (const [s, e] of c.loss) row.spans.push(c.start + s - row.start, c.start + e - row.start);
  }
  return rows.map((r) => JSON.stringify({ segs: r.segs, spans: r.spans }));
}

/** Uuids of a batch (all turns of all segments, or the examples of `packing: "examples"`). */
export function uuidsOf(b: WireBatch): string[] {
  return b.examples.length > 0 ? b.examples.map((e) => e.uuid) : b.uuids;
}
