import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ordinaryRecord, parseRecord } from '../../src/corpus/record-parse.js';
import { describeSchemaError, recordSchema } from '../../src/corpus/record-schema.js';

/**
 * The indexer's hand-written record check must be zod's schema, only faster: for every input,
 * the same accepted value (same keys, same order, same copies) or the same error message.
 */
const RELEASE = readFileSync(new URL('../fixtures/release-records.jsonl', import.meta.url), 'utf8')
  .trimEnd()
  .split('\n')
  .map((l) => JSON.parse(l) as Record<string, unknown>);

const LIST_FORM = {
  instruction: 'Describe the sound.',
  input: '<|SOA|>39_AudioSet_x<|EOA|>',
  output: 'a dog barks',
  uuid: 'u-1',
  split: ['train', 'dev'],
  task_type: {
    major: ['Audio Captioning'],
    minor: ['AudioSet Captioning', 'second'],
    'U/G': ['understanding'],
    unseen: true,
    extra: 1,
  },
  domain: 'audio',
  source: ['youtube', 'field'],
  other: { duration: 3.5, tags: ['a'] },
  audio_start: 0.5,
  audio_end: null,
  unknown_key: 'dropped',
};
const BASES: readonly Record<string, unknown>[] = [...RELEASE, LIST_FORM];

/** Values a field of a JSON record may hold, well- and ill-formed. */
const VALUES: readonly unknown[] = [
  undefined,
  null,
  '',
  'train',
  'generation',
  'x',
  0,
  1.5,
  Infinity,
  Number.NaN,
  true,
  false,
  [],
  [''],
  ['train'],
  ['dev', 'test'],
  ['train', 'bogus'],
  ['a', 1],
  ['understanding', 'generation'],
  {},
  { a: 1 },
  JSON.parse('{"__proto__": {"x": 1}}'),
  new Date(0),
  [['train']],
];

function mutations(base: Record<string, unknown>): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [base];
  const keys = [...new Set([...Object.keys(base), 'other', 'audio_start', 'audio_end', 'source'])];
  for (const k of keys) {
    const without = { ...base };
    delete without[k];
    out.push(without);
    for (const v of VALUES) out.push({ ...base, [k]: v });
  }
  const tt = base.task_type as Record<string, unknown>;
  for (const k of ['major', 'minor', 'U/G', 'unseen']) {
    const without = { ...tt };
    delete without[k];
    out.push({ ...base, task_type: without });
    for (const v of VALUES) out.push({ ...base, task_type: { ...tt, [k]: v } });
  }
  return out;
}

/** Key order, recursively: zod's output lists known keys in schema order. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (typeof v === 'object' && v !== null) return Object.entries(v).map(([k, x]) => [k, shape(x)]);
  return v;
}

describe('parseRecord agrees with recordSchema exactly', () => {
  const inputs = [...BASES.flatMap(mutations), null, 'a string', 42, [], [LIST_FORM]];

  it(`on ${inputs.length} well- and ill-formed records`, () => {
    let accepted = 0;
    for (const input of inputs) {
      const z = recordSchema.safeParse(input);
      const mine = parseRecord(input);
      if (z.success) {
        accepted++;
        expect(mine.ok, JSON.stringify(input)).toBe(true);
        const rec = mine.ok ? mine.rec : undefined;
        expect(rec).toStrictEqual(z.data);
        expect(shape(rec)).toStrictEqual(shape(z.data));
        // Copies, as zod makes them: normalizing never aliases the input's arrays.
        const given = input as Record<string, unknown>;
        for (const k of ['split', 'source', 'other'] as const)
          if (typeof given[k] === 'object' && given[k] !== null) expect(rec?.[k]).not.toBe(given[k]);
      } else {
        expect(mine).toStrictEqual({ ok: false, detail: describeSchemaError(z.error) });
      }
    }
    // Both outcomes are exercised in bulk, not just one of them.
    expect(accepted).toBeGreaterThan(100);
    expect(inputs.length - accepted).toBeGreaterThan(100);
  });

  it('takes the fast path for the release record shapes (zod is only the fallback)', () => {
    for (const r of BASES) expect(ordinaryRecord(r), JSON.stringify(r)).toStrictEqual(recordSchema.parse(r));
    // And declines what only zod may judge.
    expect(ordinaryRecord({ ...LIST_FORM, audio_start: Infinity })).toBeUndefined();
    expect(ordinaryRecord({ ...LIST_FORM, other: JSON.parse('{"__proto__": 1}') })).toBeUndefined();
  });
});
