import type { TextTokenizer } from '../tokenize/text-tokenizer.js';

/**
 * ChatML as the Qwen models use it, pre-tokenized once:
 *   [<|im_start|>system\n{system}<|im_end|>\n]
 *   <|im_start|>user\n{instruction}[\n{input}]<|im_end|>\n<|im_start|>assistant\n{output}<|im_end|>\n
 * Audio sits inline in input/output between <|SOA|> and <|EOA|>. Only the assistant content and
 * its <|im_end|> are supervised.
 */
export class ChatTemplate {
  readonly system: Int32Array;
  readonly userOpen: Int32Array;
  readonly sep: Int32Array;
  readonly userClose: Int32Array;
  readonly assistantOpen: Int32Array;
  /** Supervised end marker after the answer. */
  readonly imEnd: number;
  readonly pad: number;
  /** Unsupervised newline after the answer's end marker. */
  readonly trail: Int32Array;

  private constructor(parts: { system: Int32Array; userOpen: Int32Array; sep: Int32Array; userClose: Int32Array; assistantOpen: Int32Array; imEnd: number; pad: number; trail: Int32Array }) {
    this.system = parts.system;
    this.userOpen = parts.userOpen;
    this.sep = parts.sep;
    this.userClose = parts.userClose;
    this.assistantOpen = parts.assistantOpen;
    this.imEnd = parts.imEnd;
    this.pad = parts.pad;
    this.trail = parts.trail;
  }

  static async create(tok: TextTokenizer, systemPrompt = ''): Promise<ChatTemplate> {
    const { imStart, imEnd } = tok.special;
    const [user, nl, assistant, sysHead, sysBody] = await tok.encodeBatch(['user\n', '\n', 'assistant\n', 'system\n', systemPrompt]);
    const cat = (...xs: (Int32Array | number[] | undefined)[]): Int32Array => Int32Array.from(xs.flatMap((x) => Array.from(x ?? [])));
    return new ChatTemplate({
      system: systemPrompt === '' ? new Int32Array(0) : cat([imStart], sysHead, sysBody, [imEnd], nl),
      userOpen: cat([imStart], user),
      sep: cat(nl),
      userClose: cat([imEnd], nl),
      assistantOpen: cat([imStart], assistant),
      imEnd,
      pad: tok.special.pad,
      trail: cat(nl),
    });
  }

  /** Tokens of one turn whose user input has `input` tokens (0 = instruction only). */
  turnLength(instr: number, input: number, output: number): number {
    return this.userOpen.length + instr + (input > 0 ? this.sep.length + input : 0) + this.userClose.length + this.assistantOpen.length + output + 1 + this.trail.length;
  }
}
