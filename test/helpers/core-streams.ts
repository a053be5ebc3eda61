import { createHash } from 'node:crypto';
import { int32s, segmentColumns } from '../../clients/ts/wire-decode.js';
import { coreSettings } from '../../src/config/core-settings.js';
import { loadConfig } from '../../src/config/load-config.js';
import { FlanError } from '../../src/errors.js';
import { DataServiceCore } from '../../src/stream/data-service-core.js';
import type { RawMixture, RawOpen } from '../../src/stream/stream-request.js';
import type { StreamSession } from '../../src/stream/stream-session.js';
import type { WireBatch, WireEnd } from '../../src/stream/wire-types.js';

/**
 * Streams without gRPC: a DataServiceCore over an index with the default configuration (plus
 * `--set`-style overrides), and helpers that read wire batches the way a client would.
 */
export async function openCore(index: string, overrides: Record<string, string> = {}): Promise<DataServiceCore> {
  return DataServiceCore.open(index, coreSettings(loadConfig(undefined, { 'index.dir': index, ...overrides }, {})));
}

export type Spec = NonNullable<RawOpen['spec']>;

/** A train spec with the usual defaults; fields given override them. */
export function trainSpec(over: Partial<Spec> = {}): Spec {
  return { split: 'train', batchSize: 8, seqLen: 4096, packing: 'packed', seed: 0, ...over };
}

/** Up to `n` batches of a session (fewer if it ends), and its end message if it ended. */
export function take(session: StreamSession, n: number): { batches: WireBatch[]; end?: WireEnd } {
  const batches: WireBatch[] = [];
  while (batches.length < n) {
    const m = session.next();
    if (!m) break;
    if ('end' in m) return { batches, end: m.end };
    batches.push(m.batch);
  }
  return { batches };
}

/** Every message of a finite stream. */
export function drain(session: StreamSession): { batches: WireBatch[]; end: WireEnd } {
  const { batches, end } = take(session, Number.MAX_SAFE_INTEGER);
  if (!end) throw new Error('stream did not end');
  return { batches, end };
}

/** A segment as a client sees it: placement, turns (task indices), its tokens and each turn's supervised range (segment-relative). */
export interface SegView {
  readonly row: number;
  readonly offset: number;
  readonly length: number;
  readonly task: number;
  readonly uuids: readonly string[];
  readonly turnTasks: readonly number[];
  readonly tokens: Int32Array;
  readonly loss: readonly (readonly [number, number])[];
  readonly textTokens: number;
  readonly audioTokens: number;
}

/** Splits a batch into its segments with the TS client's decoder (clients/ts/wire-decode.ts). */
export function segments(b: WireBatch): SegView[] {
  const tokens = int32s(b.tokens);
  return segmentColumns(b).map((c) => ({
    row: c.row,
    offset: c.offset,
    length: c.length,
    task: c.taskIndex,
    uuids: c.uuids,
    turnTasks: c.turnTaskIndices,
    tokens: tokens.subarray(c.start, c.start + c.length),
    loss: c.loss,
    textTokens: c.textTokens,
    audioTokens: c.audioTokens,
  }));
}

/** Served examples per task (every turn of every segment), summed over batches. */
export function servedPerTask(batches: readonly WireBatch[], tasks: number): number[] {
  const n = new Array<number>(tasks).fill(0);
  for (const b of batches) for (const t of b.turnTask) n[t] = (n[t] ?? 0) + 1;
  return n;
}

/** Short fingerprint of a batch's content (step, tokens and segment columns), without its stats. */
export function content(b: WireBatch): string {
  const h = createHash('sha256')
    .update(JSON.stringify([b.step, b.segRow, b.segOffset, b.segLength, b.uuids, b.turnTask, b.lossSpans]))
    .update(b.tokens);
  return `step ${b.step}: ${h.digest('hex').slice(0, 16)}`;
}

/** The INVALID_ARGUMENT a train stream of `mixture` is refused with; anything else (opening included) fails. */
export function mixtureRefusal(core: DataServiceCore, mixture: RawMixture, heldout?: { name: string }): FlanError {
  try {
    core.open({ spec: { ...trainSpec(), mixture, heldout } });
  } catch (err) {
    if (err instanceof FlanError && err.code === 'INVALID_ARGUMENT') return err;
    throw err;
  }
  throw new Error(`mixture ${JSON.stringify(mixture)} was accepted`);
}
