import { beforeAll, describe, expect, it } from 'vitest';
import { EncodeCache } from '../../src/tokenize/encode-cache.js';
import { IM_END, TextTokenizer } from '../../src/tokenize/text-tokenizer.js';

let tok: TextTokenizer;
beforeAll(() => {
  tok = TextTokenizer.load('qwen3');
});

const SHARD_A = [
  'Transcribe the speech into text.',
  'happy',
  'text: the gap is from 0.14s to 0.54s',
  `a literal ${IM_END} stays text`,
];
const SHARD_B = ['Transcribe the speech into text.', 'sad', 'happy', '请将这段语音转写成文字。'];

describe('EncodeCache', () => {
  it('gives exactly the tokenizer ids, and encodes a text met in an earlier batch only once', async () => {
    const cache = new EncodeCache(tok);
    const a = await cache.encodeBatch(SHARD_A);
    expect(cache.encoded).toBe(SHARD_A.length);
    const b = await cache.encodeBatch(SHARD_B);
    // Only "sad" and the Chinese line are new.
    expect(cache.encoded).toBe(SHARD_A.length + 2);
    expect(a).toEqual(await tok.encodeBatch(SHARD_A));
    expect(b).toEqual(await tok.encodeBatch(SHARD_B));
    expect(await cache.encodeBatch([])).toEqual([]);
  });

  it('stays within its budget, and an evicted text is encoded again to the same ids', async () => {
    const texts = Array.from({ length: 200 }, (_, i) => `label number ${i} of a long tail`);
    const budget = 8_000;
    const cache = new EncodeCache(tok, budget);
    for (let i = 0; i < texts.length; i += 20) {
      await cache.encodeBatch(texts.slice(i, i + 20));
      expect(cache.bytes).toBeLessThanOrEqual(budget);
    }
    expect(cache.bytes).toBeGreaterThan(0);
    const before = cache.encoded;
    // The first texts are long gone; the last batch is still there.
    const again = await cache.encodeBatch([texts[0]!, texts[199]!]);
    expect(cache.encoded).toBe(before + 1);
    expect(again).toEqual(await tok.encodeBatch([texts[0]!, texts[199]!]));
  });

  it('keeps a text it keeps meeting across generations', async () => {
    const cache = new EncodeCache(tok, 8_000);
    const hot = 'Describe the sound.';
    for (let i = 0; i < 200; i += 20)
      await cache.encodeBatch([hot, ...Array.from({ length: 20 }, (_, k) => `one-off text ${i + k}`)]);
    expect(cache.encoded).toBe(1 + 200);
  });

  it('refuses a budget that is not a positive number of bytes', () => {
    expect(() => new EncodeCache(tok, 0)).toThrow(/positive number of bytes, got 0/);
    expect(() => new EncodeCache(tok, Number.NaN)).toThrow(/got NaN/);
  });
});
