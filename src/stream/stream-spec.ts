import { InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import { WITHIN, type Within, type MixtureSpec } from '../mix/mixture.js';
import { PACKING_NAMES, packingStrategy, type PackingName } from '../pack/registry.js';
import { OVERLONG, type Overlong } from '../pack/segment-layout.js';
import type { HeldoutSpec } from '../splits/heldout.js';
import type { AudioSpec } from '../tokenize/audio-layouts/audio-view.js';
import { AUDIO_LAYOUT_NAMES, DEFAULT_AUDIO_LAYOUT } from '../tokenize/audio-layouts/registry.js';
import { digest } from '../util/hash.js';
import type { RawShuffle, ShuffleDefaults, ShuffleSpec } from './shuffle-spec.js';

export const SPLITS = ['train', 'heldout', 'dev', 'test'] as const;
export type StreamSplit = (typeof SPLITS)[number];
export type Packing = PackingName;

/** What defines a stream's content. Rank, world size and max_batches only select from it. */
export interface StreamSpec {
  readonly split: StreamSplit;
  readonly batchSize: number;
  readonly seqLen: number;
  readonly packing: Packing;
  readonly mixture: MixtureSpec;
  readonly heldout: HeldoutSpec;
  readonly heldoutName: string;
  readonly seed: number;
  readonly window: number;
  readonly overlong: Overlong;
  readonly maxTurns: number;
  /** Audio codebooks and layout (docs/real-data.md); absent = flat over all codebooks. */
  readonly audio?: AudioSpec;
  /** A train stream's `blocks` record order (shuffle-spec.ts); absent = the global order. */
  readonly shuffle?: ShuffleSpec;
  /** The stream's filter in canonical text (filter/grammar.ts); absent = every record. */
  readonly filter?: string;
}

export interface Placement {
  readonly rank: number;
  readonly worldSize: number;
  /** 0 = unbounded. */
  readonly maxBatches: number;
}

/** Updates waiting for their step; each one rides in every resume token until it applies. */
export const MAX_PENDING_UPDATES = 64;

export interface MixtureUpdate {
  readonly mixture: MixtureSpec;
  readonly applyAtStep: number;
}

/** A raw spec as it arrives (proto field names, camelCase, defaults already zero/empty). */
export interface RawSpec extends RawShuffle {
  split?: string;
  batchSize?: number;
  seqLen?: number;
  packing?: string;
  seed?: number | string;
  rank?: number;
  worldSize?: number;
  maxBatches?: number | string;
  window?: number;
  overlong?: string;
  maxTurns?: number;
  audio?: { codebooks?: number; layout?: string } | null;
  filter?: string;
}

export interface SpecDefaults extends ShuffleDefaults {
  readonly window: number;
  readonly overlong: Overlong;
  readonly maxTurns: number;
}

export interface SpecLimits {
  readonly maxBatchTokens: number;
  readonly maxSeqLen: number;
  readonly maxWorldSize: number;
  /** world_size × batch_size × seq_len of one global step. */
  readonly maxStepTokens: number;
  /** Selectors of one mixture or held-out set. */
  readonly maxSelectors: number;
}

function int(field: string, v: unknown, min: number, max: number): number {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(field, `must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return n;
}

export function oneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(field, `"${String(v)}" is not one of ${allowed.join(', ')}`);
  }
  return v as T;
}

/** Validates the scalar part of a spec; mixture and held-out set are resolved by the caller. */
export function parseSpec(
  raw: RawSpec,
  mixture: MixtureSpec,
  heldout: HeldoutSpec,
  heldoutName: string,
  defaults: SpecDefaults,
  limits: SpecLimits,
): { spec: StreamSpec; placement: Placement } {
  const split = oneOf('split', raw.split || 'train', SPLITS);
  const packing = oneOf('packing', raw.packing || 'packed', PACKING_NAMES);
  if (split === 'train' && !packingStrategy(packing).train)
    throw new InvalidArgumentError('packing', `"${packing}" is for evaluation splits (heldout, dev, test)`);
  const batchSize = int('batch_size', raw.batchSize, 1, 1 << 16);
  const seqLen = int('seq_len', raw.seqLen, 16, limits.maxSeqLen);
  if (batchSize * seqLen > limits.maxBatchTokens) {
    throw new InvalidArgumentError(
      'batch_size',
      `batch_size × seq_len = ${batchSize * seqLen} exceeds the server limit of ${limits.maxBatchTokens} tokens per batch`,
    );
  }
  const worldSize = raw.worldSize ? int('world_size', raw.worldSize, 1, limits.maxWorldSize) : 1;
  const rank = int('rank', raw.rank ?? 0, 0, worldSize - 1);
  // One step plans every rank's rows at once: its work and memory grow with the product.
  if (worldSize * batchSize * seqLen > limits.maxStepTokens) {
    throw new ResourceExhaustedError(
      'server.max_step_tokens (world_size x batch_size x seq_len of one step)',
      worldSize * batchSize * seqLen,
      limits.maxStepTokens,
    );
  }
  const spec: StreamSpec = {
    split,
    batchSize,
    seqLen,
    packing,
    mixture,
    heldout,
    heldoutName,
    seed: int('seed', raw.seed ?? 0, 0, Number.MAX_SAFE_INTEGER),
    window: raw.window ? int('window', raw.window, 1, 1 << 16) : defaults.window,
    overlong: raw.overlong ? oneOf<Overlong>('overlong', raw.overlong, OVERLONG) : defaults.overlong,
    maxTurns: raw.maxTurns ? int('max_turns', raw.maxTurns, 1, 64) : defaults.maxTurns,
  };
  return {
    spec,
    placement: { rank, worldSize, maxBatches: int('max_batches', raw.maxBatches ?? 0, 0, Number.MAX_SAFE_INTEGER) },
  };
}

/**
 * A spec's audio choice, checked against the corpus's `q` codebooks, in canonical form: k = q is
 * k = 0 (all), and flat over all codebooks is no audio field at all, so default streams hash,
 * and their resume tokens read, exactly as without the field.
 */
export function parseAudio(raw: RawSpec['audio'], q: number, field = 'audio'): AudioSpec | undefined {
  if (!raw) return undefined;
  const layout = raw.layout ? oneOf(`${field}.layout`, raw.layout, AUDIO_LAYOUT_NAMES) : DEFAULT_AUDIO_LAYOUT.name;
  const k = raw.codebooks ?? 0;
  if (!Number.isInteger(k) || k < 0 || k > q) {
    throw new InvalidArgumentError(
      `${field}.codebooks`,
      `must be 0 (all) or 1…${q}: the corpus's clips have ${q} codebooks, got ${String(raw.codebooks)}`,
    );
  }
  const codebooks = k === q ? 0 : k;
  return layout === DEFAULT_AUDIO_LAYOUT.name && codebooks === 0 ? undefined : { codebooks, layout };
}

export function specHash(spec: StreamSpec): string {
  return digest(JSON.stringify(spec));
}

export function parseWithin(field: string, v: unknown): Within {
  return oneOf<Within>(field, v, WITHIN);
}
