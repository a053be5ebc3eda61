/**
 * The vocabulary the per-task record templates of the sample corpus are written in.
 * A template says where the task's primary clip goes (input or output), which extra clips a
 * record needs (fresh ones, e.g. the clean target of an enhancement, or ones drawn from the same
 * dataset's pool, e.g. a speaker prompt), its instruction variants, and how input/output are built.
 */
import type { Clip } from './sample-datasets.js';
import type { Rng } from './sample-rng.js';
import type { Domain } from './task-catalog.js';

export type ExtraSlot = 'fresh' | 'pool';

export interface Made {
  readonly input: string;
  readonly output: string;
  readonly other?: Record<string, unknown> | null;
}

export interface Ctx {
  readonly rng: Rng;
  /** The task's primary clip (input for most tasks, output for TTS-like ones). */
  readonly p: Clip;
  /** Extra clips, one per slot of the template's `extras`. */
  readonly x: readonly Clip[];
  /** True when the instruction chosen for this record is Chinese. */
  readonly zh: boolean;
}

export interface TaskTemplate {
  readonly domain: Domain;
  readonly minor: string;
  readonly primary: 'in' | 'out';
  readonly extras?: readonly ExtraSlot[];
  readonly instr: readonly string[];
  /** Chinese instruction variants; used for about half the records whose primary clip is Chinese. */
  readonly zh?: readonly string[];
  readonly make: (c: Ctx) => Made;
}

/** `<|SOA|>id<|EOA|>`. */
export function ref(clip: Clip): string {
  return `<|SOA|>${clip.id}<|EOA|>`;
}

/** An input audio part: mostly bare, sometimes labelled `audio: `. */
export function audioIn(c: Ctx, clip: Clip = c.p): string {
  return c.rng.chance(0.25) ? `audio: ${ref(clip)}` : ref(clip);
}

/** A generated-audio output: bare, `audio: …` or (speech) `Generated speech is: …`. */
export function audioOut(c: Ctx, clip: Clip, speech = false): string {
  const r = c.rng.next();
  if (r < 0.5) return ref(clip);
  if (r < 0.75 || !speech) return `audio: ${ref(clip)}`;
  return `Generated speech is: ${ref(clip)}`;
}

/** The i-th extra clip of the record. */
export function extra(c: Ctx, i: number): Clip {
  const clip = c.x[i];
  if (!clip) throw new Error(`template needs extra clip ${String(i)}`);
  return clip;
}

/** One of several phrasings for a text answer. */
export function phrase(c: Ctx, forms: readonly string[], value: string): string {
  return c.rng.pick(forms).replace('{}', value);
}
