/**
 * Structured fuzzing of resume tokens (issue 12.15): decodes a real token, sets one field at a
 * time (every number, in the payload, the spec and each state section) to a boundary value (0, -1,
 * its size, size + 1, 2^53, NaN, a huge array), re-encodes it with a valid checksum and sends it.
 * Each call must be answered (a status or batches) within `boundMs`; nothing else is asserted
 * here, so the same cases drive the vitest fuzzer and the soak. Seeded: the same seed gives the
 * same cases.
 */
import { unpack } from 'msgpackr';
import type { FlanStreamClient } from '../../clients/ts/service-client.js';
import { encodeToken, type TokenPayload } from '../../src/stream/resume-token.js';
import { specHash, type StreamSpec } from '../../src/stream/stream-spec.js';
import { collect } from '../helpers/grpc-stream-calls.js';
import { rng } from '../helpers/seeded-rng.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json } | Uint8Array;

/** Paths to every number and array in `v` (arrays' elements sampled: at most 4 per array). */
function leaves(v: Json, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (typeof v === 'number') out.push(path);
  else if (Array.isArray(v)) {
    out.push(path);
    const picks = v.length <= 4 ? v.map((_, i) => i) : [0, 1, v.length - 2, v.length - 1];
    for (const i of picks) leaves(v[i]!, [...path, i], out);
  } else if (v && typeof v === 'object' && !(v instanceof Uint8Array))
    for (const [k, x] of Object.entries(v)) leaves(x, [...path, k], out);
  return out;
}

function boundaries(current: Json, size: number): Json[] {
  if (Array.isArray(current)) return [[], new Array<number>(200_000).fill(1), [...current, 0], current.slice(1)];
  return [0, -1, size, size + 1, 2 ** 53, NaN, 1e308, -0.5];
}

/** `count` forged tokens made from `token` (a real one of this server), with what each changed. */
export function forgedTokens(token: Uint8Array, count: number, seed: number): { name: string; token: Buffer }[] {
  // An unsigned token: "FST" 1, a 16-byte checksum, the msgpack payload.
  const base = unpack(Buffer.from(token).subarray(20)) as Record<string, Json>;
  const paths = leaves(base as Json).filter((p) => p[0] !== 'specHash');
  const rand = rng(seed);
  const out: { name: string; token: Buffer }[] = [];
  for (let n = 0; n < count; n++) {
    const path = paths[Math.floor(rand() * paths.length)]!;
    const q = structuredClone(base);
    let parent: Json = q as Json;
    for (const k of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)[k]!;
    const key = path.at(-1)!;
    const cur = (parent as Record<string | number, Json>)[key]!;
    const size = Array.isArray(parent) ? parent.length : typeof cur === 'number' ? Math.abs(cur) : 0;
    const options = boundaries(cur, size);
    const value = options[Math.floor(rand() * options.length)]!;
    (parent as Record<string | number, Json>)[key] = value;
    q.specHash = specHash(q.spec as unknown as StreamSpec);
    const shown = Array.isArray(value) ? `[${value.length} items]` : String(value);
    out.push({ name: `${path.join('.')} = ${shown}`, token: encodeToken(q as unknown as TokenPayload) });
  }
  return out;
}

/**
 * Sends forged tokens, a few at a time, until `stop()`: the soak's fuzzer. Problems are calls not
 * answered within `boundMs` and INTERNAL/UNKNOWN statuses.
 */
export async function fuzzLoop(
  client: FlanStreamClient,
  stop: () => boolean,
  boundMs = 10_000,
): Promise<{ calls: number; problems: string[] }> {
  const problems: string[] = [];
  let calls = 0;
  const first = await collect(client, [
    { spec: { split: 'train', batchSize: 2, seqLen: 2048, packing: 'packed', seed: 5, maxBatches: 2 } },
  ]);
  const token = first.batches.at(-1)?.resumeToken;
  if (!token) return { calls, problems: [`fuzzer: no token to forge (${first.error?.message ?? 'no batches'})`] };
  for (let round = 0; !stop(); round++) {
    await Promise.all(
      forgedTokens(token, 4, 1000 + round).map(async (c) => {
        calls++;
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), boundMs)));
        const r = await Promise.race([collect(client, [{ resume: { token: c.token, maxBatches: 1 } }]), late]);
        clearTimeout(timer);
        if (r === 'late') problems.push(`fuzzer: no answer within ${boundMs} ms to ${c.name}`);
        else if (r.error && ['INTERNAL', 'UNKNOWN'].includes(r.error.codeName))
          problems.push(`fuzzer: ${r.error.codeName} for ${c.name}: ${r.error.details}`);
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
  }
  client.close();
  return { calls, problems };
}
