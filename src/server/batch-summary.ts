import type { WireBatch, WireExample, WireStats } from '../stream/wire-types.js';

/**
 * What the server thread reads of a batch a build worker built (/metrics and the status page:
 * the segment columns, the turn tasks and the stats), packed into one Float64Array. Why: the
 * batch's wire bytes already travel as a transferred buffer, and its columns as a structured
 * clone of the object cost the worker about as much as encoding the batch (uuid strings and
 * ~20 arrays of plain numbers, serialized there and rebuilt here); a typed array is one copy.
 * Columns only the client needs (tokens, uuids, loss spans, offsets, the resume token) are left
 * out: they are in the wire bytes.
 */

/** The stats arrays and numbers, in a fixed order; `complete` below fails to compile if Stats gains a field not listed. */
const STATS_ARRAYS = [
  'taskExamples',
  'taskTextTokens',
  'taskAudioTokens',
  'taskTarget',
  'domainExamples',
  'domainTarget',
  'taskDropped',
  'taskTruncated',
  'taskExamplesSinceUpdate',
  'domainExamplesSinceUpdate',
  'taskExamplesWindow',
  'domainExamplesWindow',
  'taskEpochs',
  'domainAudioSeconds',
] as const satisfies readonly (keyof WireStats)[];
const STATS_NUMBERS = [
  'paddingTokens',
  'dropped',
  'truncated',
  'sinceUpdateStep',
  'windowStartStep',
] as const satisfies readonly (keyof WireStats)[];
type Unlisted = Exclude<keyof WireStats, (typeof STATS_ARRAYS)[number] | (typeof STATS_NUMBERS)[number]>;
const complete: [Unlisted] extends [never] ? true : Unlisted = true;
void complete;

/** The batch columns the server thread reads, in a fixed order. */
const COLUMNS = [
  'segTask',
  'segLength',
  'segTextTokens',
  'segAudioTokens',
  'segAudioFrames',
  'segDomain',
  'turnTask',
] as const satisfies readonly (keyof WireBatch)[];
const HEADER = [
  'step',
  'rank',
  'worldSize',
  'batchSize',
  'seqLen',
  'padId',
  'totalSteps',
] as const satisfies readonly (keyof WireBatch)[];

/** A batch's summary, and its evaluation examples (packing "examples" only; cloned, their token counts are read). */
export interface BatchSummary {
  readonly packed: Float64Array;
  readonly examples: readonly WireExample[];
}

/** Length-prefixed arrays, one after the other. */
function put(out: Float64Array, at: number, xs: readonly number[]): number {
  out[at] = xs.length;
  out.set(xs, at + 1);
  return at + 1 + xs.length;
}

export function summarize(b: WireBatch): BatchSummary {
  const s = b.stats;
  let n = HEADER.length + STATS_NUMBERS.length;
  for (const k of COLUMNS) n += 1 + b[k].length;
  for (const k of STATS_ARRAYS) n += 1 + s[k].length;
  const out = new Float64Array(n);
  let at = 0;
  for (const k of HEADER) out[at++] = b[k];
  for (const k of STATS_NUMBERS) out[at++] = s[k];
  for (const k of COLUMNS) at = put(out, at, b[k]);
  for (const k of STATS_ARRAYS) at = put(out, at, s[k]);
  return { packed: out, examples: b.examples };
}

const EMPTY = Buffer.alloc(0);

/** The batch as the server thread's metrics read it; the columns left out are empty. */
export function unsummarize({ packed, examples }: BatchSummary): WireBatch {
  let at = 0;
  const next = (): number[] => {
    const n = packed[at++] ?? 0;
    return Array.from(packed.subarray(at, (at += n)));
  };
  const batch: Record<string, unknown> = {
    tokens: EMPTY,
    resumeToken: EMPTY,
    segRow: [],
    segOffset: [],
    segTurns: [],
    uuids: [],
    lossSpans: [],
    taskDropped: [],
    droppedFitSeqLen: 0,
    heldoutFingerprint: '',
    examples: [...examples],
  };
  const stats: Record<string, unknown> = {};
  for (const k of HEADER) batch[k] = packed[at++];
  for (const k of STATS_NUMBERS) stats[k] = packed[at++];
  for (const k of COLUMNS) batch[k] = next();
  for (const k of STATS_ARRAYS) stats[k] = next();
  batch.stats = stats;
  return batch as unknown as WireBatch;
}
