/**
 * The values this server accepts for a stream spec's enumerated string fields, read from the
 * tables that define them (packing strategies, policies, audio layouts, record orders…).
 * GetCorpusInfo publishes them so that clients check their arguments against the server they
 * talk to rather than trusting lists of their own.
 */
import { WITHIN } from '../mix/mixture.js';
import { DEFAULT_LAG_STEPS } from '../mix/policy/policy-spec.js';
import { POLICIES } from '../mix/policy/registry.js';
import { PACKING_NAMES, packingStrategy } from '../pack/registry.js';
import { OVERLONG } from '../pack/segment-layout.js';
import { HELDOUT_SCOPES } from '../splits/heldout.js';
import { AUDIO_LAYOUT_NAMES } from '../tokenize/audio-layouts/registry.js';
import { SHUFFLES } from './shuffle-spec.js';
import { SPLITS } from './stream-spec.js';

export interface SpecChoices {
  readonly splits: readonly string[];
  readonly packings: readonly string[];
  /** Packings a train stream refuses: they serve evaluation splits only. */
  readonly evalOnlyPackings: readonly string[];
  readonly policies: readonly string[];
  readonly within: readonly string[];
  readonly audioLayouts: readonly string[];
  readonly shuffles: readonly string[];
  readonly overlong: readonly string[];
  readonly heldoutScopes: readonly string[];
  /** A policy's `lag_steps` when the spec leaves it 0. */
  readonly defaultLagSteps: number;
}

export function specChoices(): SpecChoices {
  return {
    splits: SPLITS,
    packings: PACKING_NAMES,
    evalOnlyPackings: PACKING_NAMES.filter((p) => !packingStrategy(p).train),
    policies: Object.keys(POLICIES),
    within: WITHIN,
    audioLayouts: AUDIO_LAYOUT_NAMES,
    shuffles: SHUFFLES,
    overlong: OVERLONG,
    heldoutScopes: HELDOUT_SCOPES,
    defaultLagSteps: DEFAULT_LAG_STEPS,
  };
}
