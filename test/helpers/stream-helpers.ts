import { createHash } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import { expect } from 'vitest';
import { toFlanStreamError, type FlanStreamError } from '../../clients/ts/errors.js';
import type { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { TestServer } from './server-harness.js';
import type { WireBatch, WireEnd, WireResponse } from '../../clients/ts/wire-types.js';

/** What one raw `StreamBatches` call produced. */
export interface Collected {
  readonly batches: WireBatch[];
  readonly end?: WireEnd;
  readonly error?: FlanStreamError;
}

/**
 * Sends `messages` (anything: malformed requests included) on one raw call and reads responses
 * until a StreamEnd, an error, the end of the call, or `max` batches (then cancels).
 */
export function collect(client: FlanStreamClient, messages: readonly object[], max = Infinity): Promise<Collected> {
  return new Promise((resolve) => {
    const call = client.streamBatches();
    const batches: WireBatch[] = [];
    let done = false;
    const finish = (r: Omit<Collected, 'batches'>): void => {
      if (done) return;
      done = true;
      call.cancel();
      resolve({ batches, ...r });
    };
    call.on('data', (resp: WireResponse) => {
      if (resp.kind === 'end' && resp.end) finish({ end: resp.end });
      else if (resp.batch) {
        batches.push(resp.batch);
        if (batches.length >= max) finish({});
      }
    });
    call.on('error', (err: unknown) => finish({ error: toFlanStreamError(err, client.target) }));
    call.on('end', () => finish({}));
    for (const m of messages) call.write(m as never);
  });
}

/** Batches of a spec (first message), failing the test on any error. */
export async function batchesOf(client: FlanStreamClient, spec: object, n: number, updates: object[] = []): Promise<WireBatch[]> {
  const r = await collect(client, [{ spec: { maxBatches: n, ...spec }, updates }]);
  if (r.error) throw r.error;
  return r.batches;
}

/** Batches after resuming from `token`, failing the test on any error. */
export async function resumeFrom(client: FlanStreamClient, token: Uint8Array, n: number, extra: object = {}): Promise<WireBatch[]> {
  const r = await collect(client, [{ resume: { token, maxBatches: n, ...extra } }]);
  if (r.error) throw r.error;
  return r.batches;
}

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

/** Asserts an error with `code` whose details (and `flanstream-field` trailer) name `field`. */
export function expectStatus(r: Collected, code: Status, field?: string): void {
  expect(r.error, `expected ${Status[code]}, got ${r.batches.length} batches`).toBeDefined();
  expect(r.error!.codeName).toBe(Status[code]);
  if (field !== undefined) {
    expect(r.error!.details).toContain(field);
    expect(r.error!.metadata['flanstream-field']).toBe(field);
  }
}

/** A small seeded PRNG (mulberry32) for reproducible random test points. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The server's open StreamBatches calls, from its Prometheus gauge. */
export async function activeStreams(ts: TestServer): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${ts.server.httpPort}/metrics`)).text();
  const m = /^flanstream_active_streams (\d+)$/m.exec(text);
  if (!m) throw new Error('no flanstream_active_streams gauge in /metrics');
  return Number(m[1]);
}
