import type { SpecialIds, TextTokenizer } from './text-tokenizer.js';

/**
 * Token ids of the fixed text around records in the ChatML template: tokenized once at index
 * time and stored in the manifest, so serving needs no tokenizer. The template is vocabulary
 * (what the model reads), not packing: src/pack lays records out through it.
 */
export interface TemplatePieces {
  readonly user: readonly number[];
  readonly nl: readonly number[];
  readonly assistant: readonly number[];
  readonly system: readonly number[];
}

/** The fixed text of the template, tokenized: what the indexer stores in the manifest. */
export async function templatePieces(tok: TextTokenizer): Promise<TemplatePieces> {
  const [user, nl, assistant, system] = await tok.encodeBatch(['user\n', '\n', 'assistant\n', 'system\n']);
  const ids = (x: Int32Array | undefined): number[] => Array.from(x ?? []);
  return { user: ids(user), nl: ids(nl), assistant: ids(assistant), system: ids(system) };
}

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

  private constructor(parts: {
    system: Int32Array;
    userOpen: Int32Array;
    sep: Int32Array;
    userClose: Int32Array;
    assistantOpen: Int32Array;
    imEnd: number;
    pad: number;
    trail: Int32Array;
  }) {
    this.system = parts.system;
    this.userOpen = parts.userOpen;
    this.sep = parts.sep;
    this.userClose = parts.userClose;
    this.assistantOpen = parts.assistantOpen;
    this.imEnd = parts.imEnd;
    this.pad = parts.pad;
    this.trail = parts.trail;
  }

  /**
   * From the pieces stored in the index; `systemBody` is the tokenized system prompt (empty: no
   * system turn). Special ids come from the index's vocabulary layout.
   */
  static fromPieces(
    pieces: TemplatePieces,
    special: Pick<SpecialIds, 'imStart' | 'imEnd' | 'pad'>,
    systemBody?: Int32Array,
  ): ChatTemplate {
    const { imStart, imEnd } = special;
    const cat = (...xs: (Int32Array | readonly number[])[]): Int32Array =>
      Int32Array.from(xs.flatMap((x) => Array.from(x)));
    return new ChatTemplate({
      system:
        systemBody === undefined ? new Int32Array(0) : cat([imStart], pieces.system, systemBody, [imEnd], pieces.nl),
      userOpen: cat([imStart], pieces.user),
      sep: cat(pieces.nl),
      userClose: cat([imEnd], pieces.nl),
      assistantOpen: cat([imStart], pieces.assistant),
      imEnd,
      pad: special.pad,
      trail: cat(pieces.nl),
    });
  }

  /** Tokens of one turn whose user input has `input` tokens (0 = instruction only). */
  turnLength(instr: number, input: number, output: number): number {
    return (
      this.userOpen.length +
      instr +
      (input > 0 ? this.sep.length + input : 0) +
      this.userClose.length +
      this.assistantOpen.length +
      output +
      1 +
      this.trail.length
    );
  }
}
