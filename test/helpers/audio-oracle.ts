import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/**
 * The audio a served record must carry, recomputed from the corpus files alone: its own JSONL,
 * `.scp` and `.npy` parsing and its own layout transforms (docs/real-data.md), no server code. A
 * test compares every `<|SOA|>…<|EOA|>` span of a served segment with these clips.
 */
export interface OracleVocab {
  readonly audioOffset: number;
  readonly codebookSize: number;
  readonly audioPadId: number;
  readonly soa: number;
  readonly eoa: number;
}

interface Clip {
  /** codes[q][f] */
  readonly codes: number[][];
}

interface OracleRecord {
  /** Audio ids in order of appearance: instruction, input, output. */
  readonly instr: string[];
  readonly input: string[];
  readonly output: string[];
  readonly window: [number | undefined, number | undefined];
}

const REF = /<\|SOA\|>(.*?)<\|EOA\|>/gs;
const ids = (s: string): string[] => [...s.matchAll(REF)].map((m) => (m[1] ?? '').trim());

function walk(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
  );
}

/** A minimal .npy reader: little-endian int dtypes, C order, [frames] or [q, frames]. */
function readNpy(buf: Buffer): number[][] {
  const hlen = buf[6] === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (buf[6] === 1 ? 10 : 12) + hlen;
  const header = buf.toString('latin1', start - hlen, start);
  const descr = /'descr': '([^']+)'/.exec(header)?.[1] ?? '';
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const [q, frames] = shape.length === 1 ? [1, shape[0]!] : [shape[0]!, shape[1]!];
  const size = Number(descr.slice(2));
  const read = (at: number): number => {
    switch (descr) {
      case '<i2':
        return buf.readInt16LE(at);
      case '<u2':
        return buf.readUInt16LE(at);
      case '<i4':
        return buf.readInt32LE(at);
      default:
        return Number(buf.readBigInt64LE(at));
    }
  };
  return Array.from({ length: q }, (_, c) =>
    Array.from({ length: frames }, (_, f) => read(start + (c * frames + f) * size)),
  );
}

export class AudioOracle {
  private readonly records = new Map<string, OracleRecord>();
  private readonly scp = new Map<string, string>();
  private readonly clips = new Map<string, Clip>();
  private readonly rate: number;

  constructor(
    private readonly corpus: string,
    audioRoot: string,
    private readonly vocab: OracleVocab,
  ) {
    for (const f of walk(join(corpus, 'scp_files'))) {
      for (const line of readFileSync(f, 'utf8').split('\n')) {
        const [id, path] = line.trim().split(/\s+/);
        if (id && path) this.scp.set(id, path.replace(`${audioRoot}/`, '').replace(/^audio_files\//, ''));
      }
    }
    this.rate = (
      JSON.parse(readFileSync(join(corpus, 'audio_tokens', 'codec.json'), 'utf8')) as { frame_rate: number }
    ).frame_rate;
    for (const f of walk(join(corpus, 'metadata')).filter((p) => /\.jsonl(\.gz)?$/.test(p))) {
      const raw = readFileSync(f);
      for (const line of (f.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        const r = JSON.parse(line) as {
          uuid: string;
          instruction: string;
          input: string;
          output: string;
          audio_start?: number;
          audio_end?: number;
        };
        this.records.set(r.uuid, {
          instr: ids(r.instruction),
          input: ids(r.input),
          output: ids(r.output),
          window: [r.audio_start, r.audio_end],
        });
      }
    }
  }

  private clip(id: string): Clip {
    let c = this.clips.get(id);
    if (!c) {
      const path = this.scp.get(id);
      if (path === undefined) throw new Error(`oracle: ${id} is in no .scp`);
      c = { codes: readNpy(readFileSync(join(this.corpus, 'audio_tokens', path.replace(/\.[^./]+$/, '.npy')))) };
      this.clips.set(id, c);
    }
    return c;
  }

  /** A clip's served span (markers included) under `layout` over its first k codebooks (0 = all). */
  span(id: string, window: OracleRecord['window'], layout: string, k: number): number[] {
    const { codes } = this.clip(id);
    const q = codes.length;
    const kk = k === 0 ? q : k;
    const from = window[0] === undefined ? 0 : Math.round(window[0] * this.rate);
    const to = window[1] === undefined ? codes[0]!.length : Math.round(window[1] * this.rate);
    const frames = to - from;
    const { audioOffset: off, codebookSize: cb, audioPadId: pad } = this.vocab;
    const tok = (c: number, f: number): number => off + c * cb + codes[c]![from + f]!;
    const out = [this.vocab.soa];
    if (layout === 'flat') {
      for (let f = 0; f < frames; f++) for (let c = 0; c < kk; c++) out.push(tok(c, f));
    } else if (layout === 'delay') {
      for (let t = 0; t < frames + kk - 1; t++)
        for (let c = 0; c < kk; c++) out.push(t - c >= 0 && t - c < frames ? tok(c, t - c) : pad);
    } else {
      throw new Error(`oracle: no layout ${layout}`);
    }
    out.push(this.vocab.eoa);
    return out;
  }

  /**
   * The clips a segment of these turns may carry, in order: per turn its instruction, input and
   * output clips (a later turn of a conversation without the shared first input clip). Truncation
   * may leave out input clips, never others.
   */
  expected(uuids: readonly string[], layout: string, k: number): { span: number[]; optional: boolean }[] {
    return uuids.flatMap((u, turn) => {
      const r = this.records.get(u);
      if (!r) throw new Error(`oracle: no record ${u}`);
      const input = turn > 0 ? r.input.slice(1) : r.input;
      const s = (id: string): number[] => this.span(id, r.window, layout, k);
      return [
        ...r.instr.map((id) => ({ span: s(id), optional: false })),
        ...input.map((id, i) => ({ span: s(id), optional: turn === 0 && i > 0 })),
        ...r.output.map((id) => ({ span: s(id), optional: false })),
      ];
    });
  }
}

/** The `<|SOA|>…<|EOA|>` spans of a token sequence, markers included. */
export function servedSpans(tokens: ArrayLike<number>, soa: number, eoa: number): number[][] {
  const out: number[][] = [];
  let open = -1;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === soa) open = i;
    else if (tokens[i] === eoa && open >= 0) {
      out.push(Array.from({ length: i - open + 1 }, (_, j) => tokens[open + j]!));
      open = -1;
    }
  }
  return out;
}

/**
 * Checks served spans against the expected clips in order: every non-optional clip present, an
 * optional one (an input clip truncation may drop) present or absent, nothing else. Returns
 * problems (empty = all good).
 */
export function matchSpans(
  served: readonly number[][],
  expected: readonly { span: number[]; optional: boolean }[],
): string[] {
  const problems: string[] = [];
  let i = 0;
  for (const e of expected) {
    const got = served[i];
    const same = got !== undefined && got.length === e.span.length && got.every((v, j) => v === e.span[j]);
    if (same) i++;
    else if (!e.optional)
      problems.push(
        `clip ${i}: expected ${e.span.length} tokens [${e.span.slice(0, 6).join(',')}…], got ${got ? `${got.length} [${got.slice(0, 6).join(',')}…]` : 'nothing'}`,
      );
  }
  if (i < served.length) problems.push(`${served.length - i} unexpected span(s)`);
  return problems;
}
