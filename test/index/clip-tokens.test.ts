import { beforeAll, describe, expect, it } from 'vitest';
import { NpyFormatError, audioCodesToTokens, parseNpy } from '../../src/corpus/npy.js';
import { ClipTokens } from '../../src/index/clip-tokens.js';
import { encodeNpy } from '../../src/sample/npy-writer.js';
import { TextTokenizer } from '../../src/tokenize/text-tokenizer.js';
import { clipKey } from '../../src/util/hash.js';

let tok: TextTokenizer;
beforeAll(() => {
  tok = TextTokenizer.load('qwen3');
});

// 2 codebooks × 5 frames, codes < 16.
const clip = (): ReturnType<typeof parseNpy> => parseNpy(encodeNpy([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [2, 5], '<i8'));

/** What the shard builder computed per shard before: the window's codes mapped between SOA and EOA. */
function fresh(npy: ReturnType<typeof parseNpy>, from: number, to: number, codebookSize: number): Int32Array {
  const out = new Int32Array(npy.codebooks * (to - from) + 2);
  out[0] = tok.special.soa;
  out[out.length - 1] = tok.special.eoa;
  audioCodesToTokens(npy, tok.vocabSize, codebookSize, out, 1, from, to);
  return out;
}

describe('ClipTokens', () => {
  it('maps a clip window once per build: the same tokens and key for every shard that uses it', () => {
    const clips = new ClipTokens(tok);
    const npy = clip();
    const a = clips.tokens(npy, 1, 4, 16);
    if (a instanceof NpyFormatError) throw a;
    expect(a).toEqual(fresh(npy, 1, 4, 16));
    expect(clips.tokens(npy, 1, 4, 16)).toBe(a);
    expect(clips.key(a)).toEqual(clipKey(fresh(npy, 1, 4, 16)));
    expect(clips.key(a)).toBe(clips.key(a));
    // Another window of the same clip is its own.
    expect(clips.tokens(npy, 0, 5, 16)).toEqual(fresh(npy, 0, 5, 16));
  });

  it('maps afresh for another codebook size, and for a clip the resolver read again', () => {
    const clips = new ClipTokens(tok);
    const npy = clip();
    const at16 = clips.tokens(npy, 0, 5, 16);
    const at32 = clips.tokens(npy, 0, 5, 32);
    expect(at32).toEqual(fresh(npy, 0, 5, 32));
    expect(at32).not.toEqual(at16);
    const reread = clip();
    expect(clips.tokens(reread, 0, 5, 32)).not.toBe(at32);
  });

  it('remembers a clip whose codes do not fit, as the error the shard builder quarantines', () => {
    const clips = new ClipTokens(tok);
    const npy = clip();
    const err = clips.tokens(npy, 0, 5, 8);
    expect(err).toBeInstanceOf(NpyFormatError);
    expect((err as NpyFormatError).message).toMatch(/code 8 at codebook 1, frame 2 is outside \[0, 8\)/);
    expect(clips.tokens(npy, 0, 5, 8)).toBe(err);
  });
});
