import { describe, expect, it } from 'vitest';
import { utf8Section } from '../../src/index/shard-strings.js';

describe('utf8Section (the shard file strings section)', () => {
  it('is each string encoded on its own, back to back, as Buffer.from would: multibyte text, and lone surrogates as U+FFFD even when the next string would pair them', () => {
    const strings = [
      '2903fba4-c903-478c-b829-d3b7c4ca377d',
      '',
      '请将这段语音转写成文字。',
      'émojis 🎵',
      'ends high \ud83c',
      '\udfb5 starts low',
      'a',
    ];
    const expected = Buffer.concat(strings.map((s) => Buffer.from(s, 'utf8')));
    const bytes = strings.reduce((n, s) => n + Buffer.byteLength(s, 'utf8'), 0);
    expect(bytes).toBe(expected.length);
    expect(utf8Section(strings, bytes).equals(expected)).toBe(true);
    // Joined first, the two halves would have made one 4-byte character instead of two U+FFFD.
    expect(Buffer.from(strings.join(''), 'utf8').equals(expected)).toBe(false);
  });

  it('refuses a byte count that does not match the strings', () => {
    expect(() => utf8Section(['abc'], 4)).toThrow(/wrote 3 bytes of 4/);
  });
});
