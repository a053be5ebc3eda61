import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';
import type { TaskEntry } from '../index/format.js';
import { recordsPerBlock, type BlockShape } from '../mix/block-order.js';

/**
 * A train stream's record order within each task: `global` (a permutation of the whole task)
 * or `blocks` (block-order.ts: blocks of consecutive records permuted, drawn `window` blocks at a
 * time). In a spec the global order is no field at all, so global streams hash, and their resume
 * tokens read, exactly as before the choice existed; `blocks` is a `shuffle` object that carries
 * everything its order depends on, so a token resumes the order it was made with.
 */
export const SHUFFLES = ['global', 'blocks'] as const;
export type ShuffleName = (typeof SHUFFLES)[number];

export interface ShuffleSpec {
  readonly name: 'blocks';
  /** Blocks open at once. */
  readonly window: number;
  /** Tokens a block holds (records per block = blockTokens / the task's mean record tokens). */
  readonly blockTokens: number;
}

/**
 * Tokens per block: one 64 KB page of int32 tokens, so a block spans about one page. Every
 * `blocks` order depends on it: a server with another value refuses this server's tokens.
 */
export const BLOCK_TOKENS = 16_384;
export const MAX_SHUFFLE_WINDOW = 1 << 16;

export interface ShuffleDefaults {
  readonly shuffle: ShuffleName;
  readonly shuffleWindow: number;
}

/** The shuffle fields of a request's spec (proto names, camelCase). */
export interface RawShuffle {
  shuffle?: string;
  shuffleWindow?: number;
}

const given = (raw: RawShuffle): boolean => Boolean(raw.shuffle) || Boolean(raw.shuffleWindow);

function name(field: string, v: unknown): ShuffleName {
  if (typeof v !== 'string' || !(SHUFFLES as readonly string[]).includes(v))
    throw new InvalidArgumentError(field, `"${String(v)}" is not one of ${SHUFFLES.join(', ')}`);
  return v as ShuffleName;
}

function windowOf(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_SHUFFLE_WINDOW)
    throw new InvalidArgumentError(
      field,
      `must be an integer in [1, ${MAX_SHUFFLE_WINDOW}] (blocks open at once), got ${String(v)}`,
    );
  return v;
}

/**
 * A request's shuffle, with the server's defaults for "" and 0. Evaluation splits are served
 * whole and in order, so a shuffle named for one is refused rather than ignored.
 */
export function parseShuffle(raw: RawShuffle, split: string, defaults: ShuffleDefaults): ShuffleSpec | undefined {
  if (split !== 'train') {
    if (given(raw))
      throw new InvalidArgumentError(
        raw.shuffle ? 'shuffle' : 'shuffle_window',
        `evaluation splits are served whole and in order; shuffle applies to split "train" only`,
      );
    return undefined;
  }
  const order = raw.shuffle ? name('shuffle', raw.shuffle) : defaults.shuffle;
  if (order === 'global') {
    if (raw.shuffleWindow)
      throw new InvalidArgumentError(
        'shuffle_window',
        `applies to shuffle "blocks" only; this stream's shuffle is "global"${raw.shuffle ? '' : ' (the server default)'}`,
      );
    return undefined;
  }
  return {
    name: 'blocks',
    window: raw.shuffleWindow ? windowOf('shuffle_window', raw.shuffleWindow) : defaults.shuffleWindow,
    blockTokens: BLOCK_TOKENS,
  };
}

/** A resume token's shuffle (client input), in canonical form: the same object parseShuffle makes. */
export function tokenShuffle(v: unknown, field = 'resume.token.spec.shuffle'): ShuffleSpec | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new InvalidArgumentError(field, 'must be an object');
  const s = v as Record<string, unknown>;
  const extra = Object.keys(s).find((k) => !['name', 'window', 'blockTokens'].includes(k));
  if (extra !== undefined)
    throw new InvalidArgumentError(`${field}.${extra}`, 'is not part of a spec this server makes');
  if (s.name !== 'blocks')
    throw new InvalidArgumentError(
      `${field}.name`,
      `must be "blocks" (a global order has no shuffle field), got ${JSON.stringify(s.name)}`,
    );
  const window = windowOf(`${field}.window`, s.window);
  if (s.blockTokens !== BLOCK_TOKENS) {
    throw new FailedPreconditionError(
      'shuffle_mismatch',
      `resume token's blocks order cuts blocks of ${String(s.blockTokens)} tokens, this server cuts blocks of ${BLOCK_TOKENS}: its order would differ; resume on a server of the token's version or start a new stream`,
    );
  }
  return { name: 'blocks', window, blockTokens: BLOCK_TOKENS };
}

export const describeShuffle = (s: ShuffleSpec | undefined): string =>
  s ? `blocks (shuffle_window ${s.window})` : 'global';

/**
 * A resume request may say which order it expects (fields left "" or 0 expect nothing); a token
 * made with another is refused with FAILED_PRECONDITION instead of continuing in another order.
 */
export function checkResumeShuffle(asked: RawShuffle, token: ShuffleSpec | undefined): void {
  if (!given(asked)) return;
  const order = asked.shuffle ? name('resume.shuffle', asked.shuffle) : 'blocks';
  const window = asked.shuffleWindow ? windowOf('resume.shuffle_window', asked.shuffleWindow) : undefined;
  const made: ShuffleName = token ? 'blocks' : 'global';
  if (order !== made || (window !== undefined && window !== token?.window)) {
    const wanted = order === 'global' ? 'global' : `blocks${window === undefined ? '' : ` (shuffle_window ${window})`}`;
    throw new FailedPreconditionError(
      'shuffle_mismatch',
      `resume token was made with shuffle ${describeShuffle(token)} but the request asks for ${wanted}; start a new stream to change the order`,
    );
  }
}

/** Per task, the block shape of a `blocks` order (undefined for the global order). */
export function blockShapes(shuffle: ShuffleSpec | undefined, tasks: readonly TaskEntry[]): BlockShape[] | undefined {
  if (!shuffle) return undefined;
  return tasks.map((t) => {
    const records = t.counts[0] + t.counts[1] + t.counts[2];
    const mean = records > 0 ? (t.textTokens + t.audioTokens) / records : 1;
    return { block: recordsPerBlock(mean, shuffle.blockTokens), window: shuffle.window };
  });
}
