import { z } from 'zod';
import { CorpusError } from '../errors.js';
import type { CorpusFiles } from './corpus-files.js';

/**
 * What codec produced the corpus's `.npy` codes (docs/real-data.md). Codes carry no frame rate and
 * no codebook size, yet serving time windows needs the first and a vocabulary needs the second,
 * so they come from `audio_tokens/codec.json`, overridden by `index` flags.
 */
export interface CodecInfo {
  /** e.g. "xcodec2"; "" when nobody said. */
  readonly name: string;
  /** Frames per second; 0 = unknown (then records with a time window are quarantined). */
  readonly frameRate: number;
  readonly codebookSize: number;
  /** Codebooks of every clip; a clip with another count is quarantined. 0 = infer from the clips. */
  readonly codebooks: number;
}

export const CODEC_FILE = 'audio_tokens/codec.json';
export const DEFAULT_CODEBOOK_SIZE = 1024;

const codecFileSchema = z
  .object({
    name: z.string().optional(),
    frame_rate: z.number().positive().finite().optional(),
    codebook_size: z
      .number()
      .int()
      .positive()
      .max(1 << 24)
      .optional(),
    codebooks: z
      .number()
      .int()
      .positive()
      .max(1 << 12)
      .optional(),
  })
  .strict();

/** codec.json when present (a malformed one is an error naming it: guessing a codec is worse). */
function readCodecFile(corpus: CorpusFiles): Partial<CodecInfo> {
  const path = corpus.describe(CODEC_FILE);
  const got = corpus.read(CODEC_FILE);
  if (!got.ok) {
    if (got.why === 'missing') return {};
    throw new CorpusError(path, `cannot be read (${got.detail})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(got.bytes.toString('utf8'));
  } catch (err) {
    throw new CorpusError(path, `is not JSON (${(err as Error).message})`);
  }
  const parsed = codecFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CorpusError(
      path,
      `${issue?.path.join('.') || '(file)'}: ${issue?.message ?? 'invalid'} (expected {"name", "frame_rate", "codebook_size", "codebooks"})`,
    );
  }
  const f = parsed.data;
  return { name: f.name, frameRate: f.frame_rate, codebookSize: f.codebook_size, codebooks: f.codebooks };
}

/** codec.json, then the overrides (flags) on top, then defaults for what neither gives. */
export function resolveCodec(corpus: CorpusFiles, overrides: Partial<CodecInfo>): CodecInfo {
  const file = readCodecFile(corpus);
  const pick = <K extends keyof CodecInfo>(k: K, fallback: CodecInfo[K]): CodecInfo[K] =>
    overrides[k] ?? file[k] ?? fallback;
  return {
    name: pick('name', ''),
    frameRate: pick('frameRate', 0),
    codebookSize: pick('codebookSize', DEFAULT_CODEBOOK_SIZE),
    codebooks: pick('codebooks', 0),
  };
}

/**
 * The corpus's codebook count when nobody states it: the most common count among a sample of
 * clips (ties to the smaller count), so one odd file — say a [frames, codebooks] array saved
 * transposed as 4096 codebooks of one frame — is quarantined instead of becoming the vocabulary.
 */
export function mostCommonCount(counts: readonly number[]): number {
  const tally = new Map<number, number>();
  for (const c of counts) tally.set(c, (tally.get(c) ?? 0) + 1);
  let best = 1;
  let bestN = 0;
  for (const [c, n] of [...tally.entries()].sort(([a], [b]) => a - b)) {
    if (n > bestN) [best, bestN] = [c, n];
  }
  return best;
}
