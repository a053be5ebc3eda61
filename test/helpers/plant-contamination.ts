import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';

/**
 * Plants contamination into a sample corpus, and knows (from the corpus files alone: JSONL, scp
 * and .npy bytes, no index) what each decontamination guard must remove:
 *  - the same codes under another id: a held-out record's clip copied to a new .npy under a new
 *    id, which replaces the clip of a few train records of other tasks;
 *  - a held-out ASR transcript reused as TTS input: a held-out record's output replaced by a
 *    unique sentence that becomes the input text of a few TTS train records;
 *  - a dataset shared by two tasks (the sample corpus has several) held out by name.
 */
export interface CorpusRecord {
  readonly uuid: string;
  readonly file: string;
  readonly task: string;
  readonly dataset: string;
  readonly domain: string;
  readonly splits: readonly string[];
  readonly fields: [string, string, string];
}

const REF = /<\|SOA\|>(.*?)<\|EOA\|>/gs;
export const clipIds = (r: CorpusRecord): string[] =>
  r.fields.flatMap((f) => [...f.matchAll(REF)].map((m) => (m[1] ?? '').trim()));
const textParts = (f: string): string =>
  f
    .split(/<\|SOA\|>.*?<\|EOA\|>/s)
    .filter((p) => p !== '')
    .join('\n');

export function readCorpus(corpus: string): CorpusRecord[] {
  const out: CorpusRecord[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.jsonl(\.gz)?$/.test(e.name)) {
        const file = relative(corpus, p);
        for (const line of readText(p).split('\n')) {
          if (line.trim() === '') continue;
          type L = string | string[];
          const j = JSON.parse(line) as {
            uuid: string;
            domain: string;
            split: L;
            instruction: string;
            input: string;
            output: string;
            task_type: { major: L; minor: L };
          };
          // Release records write these as plain strings, the paper's as lists (docs/corpus.md).
          const first = (v: L): string => (typeof v === 'string' ? v : (v[0] ?? ''));
          const splits = typeof j.split === 'string' ? [j.split] : j.split;
          out.push({
            uuid: j.uuid,
            file,
            task: `${j.domain}/${first(j.task_type.major)}/${first(j.task_type.minor)}`,
            dataset: file.split('/')[4] ?? '',
            domain: j.domain,
            splits,
            fields: [j.instruction, j.input, j.output],
          });
        }
      }
    }
  };
  walk(join(corpus, 'metadata'));
  return out;
}

const readText = (path: string): string =>
  (path.endsWith('.gz') ? gunzipSync(readFileSync(path)) : readFileSync(path)).toString('utf8');

/** Rewrites the records of `uuids` in their files through `edit` (a JSON object in, out). */
function editRecords(
  corpus: string,
  records: readonly CorpusRecord[],
  edit: (uuid: string, j: Record<string, unknown>) => void,
): void {
  for (const file of new Set(records.map((r) => r.file))) {
    const path = join(corpus, file);
    const lines = readText(path)
      .split('\n')
      .map((l) => {
        if (l.trim() === '') return l;
        const j = JSON.parse(l) as Record<string, unknown>;
        if (records.some((r) => r.uuid === j.uuid)) edit(j.uuid as string, j);
        return JSON.stringify(j);
      });
    const text = lines.join('\n');
    writeFileSync(path, path.endsWith('.gz') ? gzipSync(text) : text);
  }
}

/** audio id → .npy path, from every scp file. */
export function npyPaths(corpus: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const domain of readdirSync(join(corpus, 'scp_files'))) {
    for (const f of readdirSync(join(corpus, 'scp_files', domain))) {
      for (const l of readFileSync(join(corpus, 'scp_files', domain, f), 'utf8').split('\n')) {
        const [id, path] = l.trim().split(/\s+/);
        // The sample's three .scp path forms (relative to audio_files/, to the root, absolute under its fake root).
        const rel = path?.replace(`${SAMPLE_AUDIO_ROOT}/`, '').replace(/^audio_files\//, '');
        if (id && rel) out.set(id, join(corpus, 'audio_tokens', rel.replace(/\.\w+$/, '.npy')));
      }
    }
  }
  return out;
}

export interface Planted {
  /** Train uuid → the held-out uuid whose clip it received. */
  readonly audio: ReadonlyMap<string, string>;
  /** Train uuid → the held-out uuid whose output it received as input. */
  readonly text: ReadonlyMap<string, string>;
}

const SENTENCE =
  'quixotic zephyrs juggle marmalade beneath seventeen luminous obsidian lighthouses while grumpy walruses hum';

/** Plants into `corpus`: `heldTask` is the held-out ASR-like task, `ttsTask` the task receiving its transcript. */
export function plantContamination(
  corpus: string,
  heldTask: string,
  ttsTask: string,
  pick: (n: number) => number,
): Planted {
  const records = readCorpus(corpus);
  const held = records.filter((r) => r.task === heldTask);
  const heldIds = new Set(held.flatMap(clipIds));
  const npy = npyPaths(corpus);
  const source = held.find((r) => clipIds(r).length > 0)!;
  const clip = clipIds(source)[0]!;
  // Same codes under new ids: train-only records of other speech tasks, one per task, sharing no id with the held-out task.
  const audio = new Map<string, string>();
  const seen = new Set<string>();
  const candidates = records.filter(
    (r) =>
      r.domain === 'speech' &&
      r.task !== heldTask &&
      r.task !== ttsTask &&
      r.splits.length === 1 &&
      r.splits[0] === 'train' &&
      /<\|SOA\|>/.test(r.fields[1]) &&
      !clipIds(r).some((id) => heldIds.has(id)),
  );
  while (audio.size < 3) {
    const r = candidates[pick(candidates.length)]!;
    if (seen.has(r.task)) continue;
    seen.add(r.task);
    const id = `${r.dataset}_PLANTED${audio.size}`;
    const rel = `speech/${r.dataset}/planted/P${audio.size}.wav`;
    const target = join(corpus, 'audio_tokens', rel.replace(/\.wav$/, '.npy'));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(npy.get(clip)!, target);
    appendFileSync(join(corpus, 'scp_files', 'speech', `${r.dataset}.scp`), `${id} ${rel}\n`);
    editRecords(
      corpus,
      [r],
      (_, j) => void (j.input = (j.input as string).replace(/<\|SOA\|>.*?<\|EOA\|>/s, `<|SOA|>${id}<|EOA|>`)),
    );
    audio.set(r.uuid, source.uuid);
  }
  // The transcript: a held-out record's output becomes a unique sentence, reused as TTS input.
  const transcript = held.find((r) => r.uuid !== source.uuid)!;
  editRecords(corpus, [transcript], (_, j) => void (j.output = SENTENCE));
  const tts = records.filter((r) => r.task === ttsTask && r.splits.includes('train'));
  const text = new Map<string, string>();
  while (text.size < 2) text.set(tts[pick(tts.length)]!.uuid, transcript.uuid);
  editRecords(
    corpus,
    tts.filter((r) => text.has(r.uuid)),
    (_, j) => void (j.input = `text: ${SENTENCE.charAt(0).toUpperCase()}${SENTENCE.slice(1)}.`),
  );
  return { audio, text };
}

export interface HeldoutOracle {
  readonly tasks: readonly string[];
  readonly datasets: readonly string[];
  readonly sharedAudio: boolean;
  readonly ngram: number;
}

/**
 * What the guards of a held-out set must remove, by guard (the first that applies), computed from
 * the corpus files: clip identity by .npy bytes, n-grams as exact word strings.
 */
export function expectedRemovals(
  corpus: string,
  o: HeldoutOracle,
): { held: Set<string>; dataset: Set<string>; audio: Set<string>; text: Set<string> } {
  const records = readCorpus(corpus);
  const npy = npyPaths(corpus);
  const bytes = new Map<string, string>();
  const contentOf = (id: string): string => {
    let h = bytes.get(id);
    if (h === undefined)
      bytes.set(
        id,
        (h = createHash('sha1')
          .update(readFileSync(npy.get(id)!))
          .digest('hex')),
      );
    return h;
  };
  const heldTask = (r: CorpusRecord): boolean => o.tasks.some((t) => r.task === t || r.task.startsWith(`${t}/`));
  const heldRecs = records.filter((r) => heldTask(r) || o.datasets.includes(r.dataset));
  const words = (f: string): string[] =>
    f
      .normalize('NFKC')
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? [];
  const grams = (r: CorpusRecord): string[] =>
    r.fields.flatMap((f) => {
      const w = words(textParts(f));
      return Array.from({ length: Math.max(0, w.length - o.ngram + 1) }, (_, i) => w.slice(i, i + o.ngram).join(' '));
    });
  const heldClips = new Set(heldRecs.flatMap((r) => clipIds(r).flatMap((id) => [id, contentOf(id)])));
  const heldGrams = new Set(o.ngram > 0 ? heldRecs.flatMap(grams) : []);
  const out = {
    held: new Set(heldRecs.map((r) => r.uuid)),
    dataset: new Set<string>(),
    audio: new Set<string>(),
    text: new Set<string>(),
  };
  for (const r of records) {
    if (!r.splits.includes('train') || heldTask(r)) continue;
    if (o.datasets.includes(r.dataset)) out.dataset.add(r.uuid);
    else if (o.sharedAudio && clipIds(r).some((id) => heldClips.has(id) || heldClips.has(contentOf(id))))
      out.audio.add(r.uuid);
    else if (o.ngram > 0 && grams(r).some((g) => heldGrams.has(g))) out.text.add(r.uuid);
  }
  return out;
}
