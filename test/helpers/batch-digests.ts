import { createHash } from 'node:crypto';
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
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/** Every field of a batch in a fixed order (`withToken: false` leaves the resume token out). */
export function canonical(b: WireBatch, withToken = true): string {
  // segAudioFrames is the server's own column for /metrics, never sent: compare what a client sees.
  const { resumeToken, ...rest } = b as WireBatch & { segAudioFrames?: number[] };
  delete rest.segAudioFrames;
  return stable(withToken ? { ...rest, resumeToken } : rest);
}

/** A digest per batch, for comparing streams byte for byte. */
export function digests(batches: readonly WireBatch[], withToken = true): string[] {
  return batches.map((b) => createHash('sha256').update(canonical(b, withToken)).digest('hex'));
}

/** Little-endian int32 tokens of a batch. */
export function tokensOf(b: WireBatch): Int32Array {
  const v = new DataView(b.tokens.buffer, b.tokens.byteOffset, b.tokens.byteLength);
  return Int32Array.from({ length: b.tokens.byteLength / 4 }, (_, i) => v.getInt32(i * 4, true));
}

/**
 * The rows of a batch, each as a string independent of where the row sits: its segments'
 * tokens, metadata (offset, length, task, domain, token counts, uuids, turn tasks) and loss
 * spans relative to the row's first token.
 */
export function rowsOf(b: WireBatch): string[] {
  const toks = tokensOf(b);
  const rows: { segs: unknown[]; start: number; end: number }[] = Array.from({ length: b.batchSize }, () => ({ segs: [], start: -1, end: -1 }));
  let at = 0;
  let u = 0;
  b.segLength.forEach((len, i) => {
    const row = rows[b.segRow[i]!]!;
    if (row.start < 0) row.start = at;
    const n = b.segTurns[i]!;
    row.segs.push([b.segOffset[i], len, b.segTask[i], b.segDomain[i], b.segTextTokens[i], b.segAudioTokens[i], b.uuids.slice(u, u + n), b.turnTask.slice(u, u + n), Array.from(toks.subarray(at, at + len))]);
    u += n;
    at += len;
    row.end = at;
  });
  return rows.map((r) => {
    const spans: number[] = [];
    for (let k = 0; k < b.lossSpans.length; k += 2) {
      const s = b.lossSpans[k]!;
      if (s >= r.start && s < r.end) spans.push(s - r.start, b.lossSpans[k + 1]! - r.start);
    }
    return JSON.stringify({ segs: r.segs, spans });
  });
}

/** Uuids of a batch (all turns of all segments, or the examples of `packing: "examples"`). */
export function uuidsOf(b: WireBatch): string[] {
  return b.examples.length > 0 ? b.examples.map((e) => e.uuid) : b.uuids;
}

