import { ROW, SPAN, SPAN_WIDTH } from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { TextTokenizer } from '../../src/tokenize/text-tokenizer.js';

/** A record of the index, found by uuid. */
export interface IndexRecord {
  readonly uuid: string;
  readonly task: string;
  readonly domain: string;
  readonly instruction: Int32Array;
  readonly input: Int32Array;
  readonly output: Int32Array;
  /** [start, end) of the first audio span inside `input` (the clip a conversation shares), if any. */
  readonly firstClip: readonly [number, number] | undefined;
  readonly audioTokens: number;
}

/**
 * The test's own reading of an index: records by uuid straight from the shard tables (not
 * through the server's example tables or chat template), and the ChatML rendering the contract
 * describes, with its supervised positions.
 */
export class IndexOracle {
  readonly reader: IndexReader;
  private readonly where = new Map<string, [number, number]>();
  private readonly parts: { user: Int32Array; nl: Int32Array; assistant: Int32Array };

  private constructor(reader: IndexReader, parts: IndexOracle['parts']) {
    this.reader = reader;
    this.parts = parts;
    reader.manifest.shards.forEach((s, i) => {
      for (let r = 0; r < s.records; r++) this.where.set(reader.uuid(i, r), [i, r]);
    });
  }

  static async open(dir: string): Promise<IndexOracle> {
    const reader = IndexReader.open(dir);
    const tok = TextTokenizer.load(reader.manifest.vocab.tokenizer);
    const [user, nl, assistant] = await tok.encodeBatch(['user\n', '\n', 'assistant\n']);
    return new IndexOracle(reader, { user: user!, nl: nl!, assistant: assistant! });
  }

  get special(): { imStart: number; imEnd: number; pad: number } {
    return this.reader.manifest.vocab.special;
  }

  record(uuid: string): IndexRecord {
    const at = this.where.get(uuid);
    if (!at) throw new Error(`uuid ${uuid} is not in the index`);
    const [shard, row] = at;
    const f = this.reader.row(shard, row);
    const [start, instr, input, output] = [f[ROW.TOK_START]!, f[ROW.INSTR_LEN]!, f[ROW.INPUT_LEN]!, f[ROW.OUTPUT_LEN]!];
    const all = new Int32Array(instr + input + output);
    this.reader.readTokens(shard, start, all.length, all, 0);
    const spans = this.reader.spans(shard, f[ROW.SPAN_START]!, f[ROW.SPAN_COUNT]!);
    let firstClip: [number, number] | undefined;
    for (let o = 0; o < spans.length; o += SPAN_WIDTH) {
      const rel = spans[o + SPAN.REL_START]!;
      if (rel >= instr && rel < instr + input) {
        firstClip = [rel - instr, rel - instr + spans[o + SPAN.LENGTH]!];
        break;
      }
    }
    const task = this.reader.shard(shard).tasks[f[ROW.TASK]!]!;
    return {
      uuid,
      task: task.path,
      domain: task.domain,
      instruction: all.subarray(0, instr),
      input: all.subarray(instr, instr + input),
      output: all.subarray(instr + input),
      firstClip,
      audioTokens: f[ROW.AUDIO_TOKENS]!,
    };
  }

  /**
   * `<|im_start|>user\n{instruction}[\n{input}]<|im_end|>\n<|im_start|>assistant\n{output}<|im_end|>\n`
   * (the `\n` before the input only when it is non-empty; a later conversation turn leaves the
   * shared clip out of its input), and which positions are supervised: the output and its <|im_end|>.
   */
  render(rec: IndexRecord, laterTurn = false): { tokens: number[]; supervised: boolean[] } {
    const { imStart, imEnd } = this.special;
    let input = Array.from(rec.input);
    if (laterTurn && rec.firstClip) input = [...input.slice(0, rec.firstClip[0]), ...input.slice(rec.firstClip[1])];
    const { user, nl, assistant } = this.parts;
    const prompt = [
      imStart,
      ...user,
      ...rec.instruction,
      ...(input.length > 0 ? [...nl, ...input] : []),
      imEnd,
      ...nl,
      imStart,
      ...assistant,
    ];
    const answer = [...rec.output, imEnd];
    return {
      tokens: [...prompt, ...answer, ...nl],
      supervised: [...prompt.map(() => false), ...answer.map(() => true), ...Array.from(nl, () => false)],
    };
  }

  close(): void {
    this.reader.close();
  }
}
