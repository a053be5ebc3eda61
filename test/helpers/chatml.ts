import { TextTokenizer } from '../../src/tokenize/text-tokenizer.js';
import type { RecordFacts } from './index-facts.js';

/**
 * ChatML pieces tokenized here from their text form, independently of src/pack. The markers are
 * the control ids themselves: their spellings in text encode as plain text (text-tokenizer.ts).
 */
export interface Chatml {
  readonly user: number[];
  readonly nl: number[];
  readonly close: number[];
  readonly assistant: number[];
  readonly imStart: number;
  readonly imEnd: number;
  readonly system: number[];
}

export async function loadChatml(tokenizer: string, system = ''): Promise<Chatml> {
  const tok = TextTokenizer.load(tokenizer);
  const enc = async (s: string): Promise<number[]> => Array.from(await tok.encode(s));
  const { imStart, imEnd } = tok.special;
  return {
    user: [imStart, ...(await enc('user\n'))],
    nl: await enc('\n'),
    close: [imEnd, ...(await enc('\n'))],
    assistant: [imStart, ...(await enc('assistant\n'))],
    imStart,
    imEnd,
    system: system ? [imStart, ...(await enc(`system\n${system}`)), imEnd, ...(await enc('\n'))] : [],
  };
}

/** The record's input without its first input audio span (the clip turn 1 already showed). */
export function inputWithoutClip(r: RecordFacts): Int32Array {
  const il = r.instr.length;
  const clip = r.spans.find((s) => s.start >= il && s.start < il + r.input.length);
  if (!clip) return r.input;
  const a = clip.start - il;
  return Int32Array.from([...r.input.subarray(0, a), ...r.input.subarray(a + clip.length)]);
}

/**
 * A conversation about `turns` in ChatML (later turns without the shared clip; `inputs` overrides
 * a turn's input, e.g. a truncated one) and its supervised ranges: each answer and its <|im_end|>.
 */
export function chatml(
  tpl: Chatml,
  turns: readonly RecordFacts[],
  inputs: readonly (Int32Array | undefined)[] = [],
): { tokens: number[]; loss: [number, number][] } {
  const out: number[] = [...tpl.system];
  const loss: [number, number][] = [];
  turns.forEach((r, k) => {
    const input = inputs[k] ?? (k === 0 ? r.input : inputWithoutClip(r));
    out.push(...tpl.user, ...r.instr);
    if (input.length > 0) out.push(...tpl.nl, ...input);
    out.push(...tpl.close, ...tpl.assistant);
    const start = out.length;
    out.push(...r.output, tpl.imEnd);
    loss.push([start, out.length]);
    out.push(...tpl.nl);
  });
  return { tokens: out, loss };
}

/** Tokens of a single-turn segment of the whole record. */
export function singleLength(tpl: Chatml, r: RecordFacts): number {
  const input = r.input.length > 0 ? tpl.nl.length + r.input.length : 0;
  return (
    tpl.system.length +
    tpl.user.length +
    r.instr.length +
    input +
    tpl.close.length +
    tpl.assistant.length +
    r.output.length +
    1 +
    tpl.nl.length
  );
}
