import type { AudioLayout } from './audio-layout.js';
import { DELAY } from './delay.js';
import { FLAT } from './flat.js';

/** Every audio layout a stream spec may name; the first is the default. */
export const AUDIO_LAYOUTS: readonly AudioLayout[] = [FLAT, DELAY];
export const AUDIO_LAYOUT_NAMES: readonly string[] = AUDIO_LAYOUTS.map((l) => l.name);
export const DEFAULT_AUDIO_LAYOUT = FLAT;

export function audioLayout(name: string): AudioLayout | undefined {
  return AUDIO_LAYOUTS.find((l) => l.name === name);
}

/**
 * Minimum lengths per layout are precomputed for k = 1 … MIN_TABLE_CODEBOOKS; beyond, the entry
 * at that k is a lower bound (lengths never decrease with k).
 */
export const MIN_TABLE_CODEBOOKS = 16;

/** The key of a (layout, k) entry in per-task minimum-length tables. */
export function minKey(layout: string, k: number): string {
  return `${layout}:${Math.min(k, MIN_TABLE_CODEBOOKS)}`;
}
