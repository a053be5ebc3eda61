import type { ResolverLimits } from '../corpus/audio-resolver.js';

/**
 * The memory bounds of an index build, one place for all of them. Every per-record structure of a
 * build either lives one shard at a time or spills to disk past these bounds, so a part of any
 * size builds in the same memory; the defaults are sized for Audio-FLAN and tests set them tiny,
 * to show the spilled paths give the same index byte for byte.
 */
export interface BuildLimits extends ResolverLimits {
  /** Records whose cross-shard keys (duplicate uuids, audio groups) are sorted in memory at once (shared-keys.ts). */
  readonly bucketRecords?: number;
}
