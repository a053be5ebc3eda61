import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { qwen3TokenizerPath } from '../../src/tokenize/text-tokenizer.js';
import { topLevelField } from '../../src/util/json-top-level.js';

/** A deterministic pseudo-random JSON value whose strings hold quotes, escapes, brackets and key-like text. */
function value(seed: number, depth: number): unknown {
  const r = (k: number): number => ((seed * 2654435761 + k * 40503) >>> 0) % 1000;
  const pick = r(1) % (depth > 3 ? 4 : 7);
  const strings = ['plain', 'a "quoted" word', 'back\\slash\\', '\\"', '{"added_tokens": [1]}', '],}{[', 'ü ∑ 😀', ''];
  switch (pick) {
    case 0:
      return strings[r(2) % strings.length];
    case 1:
      return r(3) - 500 + r(4) / 7;
    case 2:
      return r(5) % 2 === 0;
    case 3:
      return null;
    case 4:
      return Array.from({ length: r(6) % 4 }, (_, i) => value(seed * 31 + i + 1, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < r(7) % 4; i++)
        o[i % 2 === 0 ? 'added_tokens' : `k"${i}\\`] = value(seed * 17 + i + 3, depth + 1);
      return o;
    }
  }
}

describe('topLevelField', () => {
  it('finds exactly the top-level value in 300 random documents, never a nested or quoted look-alike', () => {
    for (let s = 0; s < 300; s++) {
      const doc: Record<string, unknown> = {
        first: value(s, 1),
        nested: { added_tokens: 'not me' },
        text: '"added_tokens": "not me either"',
      };
      if (s % 3 !== 0) doc.added_tokens = value(s + 1000, 1);
      doc.last = value(s + 2000, 1);
      for (const space of [undefined, 2]) {
        const json = JSON.stringify(doc, null, space);
        for (const key of Object.keys(doc))
          expect(JSON.parse(topLevelField(json, key)!), `${key} in ${json}`).toStrictEqual(doc[key]);
        if (!('added_tokens' in doc)) expect(topLevelField(json, 'added_tokens')).toBeUndefined();
        expect(topLevelField(json, 'absent')).toBeUndefined();
      }
    }
  });

  it("reads the shipped Qwen3 tokenizer.json's added_tokens as JSON.parse of the whole file does", () => {
    const json = readFileSync(qwen3TokenizerPath(), 'utf8');
    const whole = JSON.parse(json) as { added_tokens: unknown[] };
    expect(whole.added_tokens.length).toBeGreaterThan(10);
    expect(JSON.parse(topLevelField(json, 'added_tokens')!)).toStrictEqual(whole.added_tokens);
  });
});
