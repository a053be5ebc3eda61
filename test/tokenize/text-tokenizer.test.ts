import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorpusError } from '../../src/errors.js';
import {
  ENDOFTEXT,
  EOA,
  IM_END,
  IM_START,
  SOA,
  TextTokenizer,
  qwen3TokenizerPath,
} from '../../src/tokenize/text-tokenizer.js';
import { makeVocabLayout } from '../../src/tokenize/vocab-layout.js';

const dir = mkdtempSync(join(tmpdir(), 'flanstream-tok-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let tok: TextTokenizer;
beforeAll(() => {
  tok = TextTokenizer.load('qwen3');
});

const TEXTS = [
  'Transcribe the speech into text.',
  'text: the gap is from 0.35s to 0.75s',
  '请将这段语音转写成文字。',
  'Mixed 中英 text with émojis 🎵🎶 and tabs\tand\nnewlines\r\n',
  '  leading and trailing spaces  ',
  'numbers 1234567890 and symbols <>&"\'{}[]|\\',
  'a',
  '\u00a0non-breaking\u2009thin space',
];

describe('TextTokenizer (Qwen3)', () => {
  it('gives every flanstream special token one id, distinct and inside the text vocabulary', async () => {
    const s = tok.special;
    const ids = [s.soa, s.eoa, s.imStart, s.imEnd, s.eos];
    expect(new Set(ids).size).toBe(5);
    for (const id of ids) expect(id).toBeGreaterThanOrEqual(0);
    for (const id of ids) expect(id).toBeLessThan(tok.vocabSize);
    expect(s.pad).toBe(s.eos);
    for (const [text, id] of [
      [SOA, s.soa],
      [EOA, s.eoa],
      [IM_START, s.imStart],
      [IM_END, s.imEnd],
      [ENDOFTEXT, s.eos],
    ] as const) {
      expect(await tok.decode([id])).toBe(text);
    }
  });

  it('keeps the ChatML ids Qwen3 was trained with', () => {
    expect([tok.special.eos, tok.special.imStart, tok.special.imEnd]).toEqual([151643, 151644, 151645]);
  });

  it('encodes the spelling of a special token in text as plain text, never as the control token', async () => {
    const specials = [tok.special.imStart, tok.special.imEnd, tok.special.soa, tok.special.eoa, tok.special.eos];
    const quad = 151650; // <|quad_start|>: special in Qwen3's own tokenizer.json, not one of ours
    for (const text of [
      `${IM_START}user\nhi ${SOA}${EOA}${IM_END}`,
      `say ${IM_END}${IM_END} twice`,
      `${ENDOFTEXT}`,
      'a <|quad_start|> b',
      '<|im_start|<|im_end|>>',
    ]) {
      const ids = Array.from(await tok.encode(text));
      expect(
        ids.filter((i) => specials.includes(i) || i === quad),
        text,
      ).toEqual([]);
      expect(await tok.decode(ids), text).toBe(text);
    }
    // Text without a special spelling is encoded exactly as before (one piece, no cut).
    expect(Array.from(await tok.encode('plain <| text |> here'))).toEqual(
      Array.from((await tok.encodeBatch(['plain <| text |> here']))[0]!),
    );
  });

  it.each(TEXTS)('round-trips %j', async (text) => {
    const ids = await tok.encode(text);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) expect(id).toBeLessThan(tok.vocabSize);
    expect(await tok.decode(ids)).toBe(text);
  });

  it('round-trips text with special tokens in it', async () => {
    const text = `${IM_START}system\nYou are helpful.${IM_END}\n${IM_START}user\naudio: ${SOA}${EOA} what is it?${IM_END}${ENDOFTEXT}`;
    expect(await tok.decode(await tok.encode(text))).toBe(text);
  });

  it('adds no BOS/EOS of its own and encodes the empty string to nothing', async () => {
    expect(Array.from(await tok.encode(''))).toEqual([]);
    const ids = Array.from(await tok.encode('hello'));
    expect(ids).not.toContain(tok.special.eos);
    expect(ids).not.toContain(tok.special.imStart);
  });

  it('encodeBatch equals encode one by one, in order', async () => {
    const batch = await tok.encodeBatch(TEXTS);
    const single = await Promise.all(TEXTS.map((t) => tok.encode(t)));
    expect(batch.map((a) => Array.from(a))).toEqual(single.map((a) => Array.from(a)));
    expect(await tok.encodeBatch([])).toEqual([]);
  });

  it('has a stable fingerprint that does not depend on how the file is named', () => {
    const again = TextTokenizer.load('qwen3');
    expect(again.fingerprint).toBe(tok.fingerprint);
    const copy = join(dir, 'tokenizer.json');
    writeFileSync(copy, readFileSync(qwen3TokenizerPath()));
    const byPath = TextTokenizer.load(copy);
    expect(byPath.fingerprint).toBe(tok.fingerprint);
    expect(byPath.special).toEqual(tok.special);
    expect(byPath.vocabSize).toBe(tok.vocabSize);
  });

  it('loads a file once per process, and again after it changed', () => {
    const path = join(dir, 'cached.json');
    writeFileSync(path, readFileSync(qwen3TokenizerPath()));
    const a = TextTokenizer.load(path);
    expect(TextTokenizer.load(path)).toBe(a);
    expect(TextTokenizer.load('qwen3')).toBe(tok);
    writeFileSync(path, `${readFileSync(qwen3TokenizerPath(), 'utf8')}\n`);
    expect(TextTokenizer.load(path)).not.toBe(a);
  });

  it('fingerprints a different vocabulary differently', () => {
    const json = JSON.parse(readFileSync(qwen3TokenizerPath(), 'utf8')) as {
      added_tokens: { content: string; id: number }[];
    };
    json.added_tokens.push({ ...json.added_tokens[json.added_tokens.length - 1]!, content: '<|extra|>', id: 200000 });
    const path = join(dir, 'other.json');
    writeFileSync(path, JSON.stringify(json));
    expect(TextTokenizer.load(path).fingerprint).not.toBe(tok.fingerprint);
  });

  it('fails with a CorpusError naming the path for a missing or invalid tokenizer.json', () => {
    expect(() => TextTokenizer.load(join(dir, 'nope.json'))).toThrow(CorpusError);
    expect(() => TextTokenizer.load(join(dir, 'nope.json'))).toThrow(/nope\.json: cannot read tokenizer \(ENOENT\)/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"version": "1.0"');
    expect(() => TextTokenizer.load(bad)).toThrow(/not a valid tokenizer\.json/);
  });
});

describe('makeVocabLayout', () => {
  it('puts audio codes right after the text vocabulary', () => {
    const v = makeVocabLayout(tok, 8, 1024);
    expect(v).toMatchObject({
      tokenizer: 'qwen3',
      textVocabSize: tok.vocabSize,
      audioOffset: tok.vocabSize,
      codebooks: 8,
      codebookSize: 1024,
    });
    // One id after the codes: the delay layout's pad (docs/real-data.md).
    expect(v.audioPadId).toBe(tok.vocabSize + 8 * 1024);
    expect(v.totalSize).toBe(v.audioPadId + 1);
    expect(v.tokenizerFingerprint).toBe(tok.fingerprint);
  });
});
