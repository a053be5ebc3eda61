/**
 * Hand-written corpora for edge cases the seeded sample corpus never produces (text-only shards,
 * duplicate uuids across shards, odd files in the layout). Records are plain JSON records (docs/corpus.md)
 * written in the Audio-FLAN directory layout; nothing here uses the indexer's own code.
 */
import { appendFileSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { encodeNpy } from '../../src/sample/npy-writer.js';
import { dirname, join } from 'node:path';

export interface TinyRecord {
  readonly uuid: string;
  readonly instruction?: string;
  readonly input?: string;
  readonly output?: string;
  readonly split?: readonly string[];
  readonly major?: string;
  readonly minor?: string;
  readonly domain?: string;
}

/** The JSON line of a record (text only unless its fields carry `<|SOA|>id<|EOA|>` references). */
export function recordLine(r: TinyRecord): string {
  return JSON.stringify({
    instruction: r.instruction ?? 'Answer the question.',
    input: r.input ?? `What is item ${r.uuid}?`,
    output: r.output ?? `It is ${r.uuid}.`,
    uuid: r.uuid,
    split: r.split ?? ['train'],
    task_type: { major: [r.major ?? 'TextQA'], minor: [r.minor ?? 'Trivia'], 'U/G': ['understanding'], unseen: false },
    domain: r.domain ?? 'speech',
    source: ['tiny'],
    other: null,
  });
}

/** The corpus-relative path of shard `file` of a dataset (`metadata/<domain>/understanding/train/<dataset>/jsonl/<file>`). */
export function shardPath(dataset: string, file: string, domain = 'speech'): string {
  return join('metadata', domain, 'understanding', 'train', dataset, 'jsonl', file);
}

/** Writes records as one JSONL shard; returns its corpus-relative path. */
export function writeShard(corpus: string, rel: string, records: readonly TinyRecord[]): string {
  const abs = join(corpus, rel);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, records.map((r) => recordLine(r) + '\n').join(''));
  return rel;
}

/**
 * `openCore` overrides for a corpus lacking most of the sample's tasks: the package's named
 * mixtures and held-out sets name tasks such a corpus does not have, so only "none" is configured.
 */
export function bareConfig(dir: string): Record<string, string> {
  mkdirSync(join(dir, 'heldout'), { recursive: true });
  mkdirSync(join(dir, 'mixtures'), { recursive: true });
  copyFileSync(new URL('../../config/heldout/none.yaml', import.meta.url), join(dir, 'heldout', 'none.yaml'));
  return { mixtures_dir: join(dir, 'mixtures'), heldout_dir: join(dir, 'heldout'), default_heldout: 'none' };
}

/**
 * Writes a clip's codec tokens (int16, codebooks × frames, codes `(q * 7 + f) % 1024`) and its scp
 * entry; returns the audio id to put between `<|SOA|>` and `<|EOA|>`.
 */
export function writeClip(
  corpus: string,
  dataset: string,
  name: string,
  codebooks: number,
  frames: number,
  domain = 'speech',
): string {
  const codes = new Int16Array(codebooks * frames);
  for (let q = 0; q < codebooks; q++) for (let f = 0; f < frames; f++) codes[q * frames + f] = (q * 7 + f) % 1024;
  const rel = `${domain}/${dataset}/${name}`;
  mkdirSync(join(corpus, 'audio_tokens', domain, dataset), { recursive: true });
  writeFileSync(join(corpus, 'audio_tokens', `${rel}.npy`), encodeNpy(codes, [codebooks, frames], '<i2'));
  mkdirSync(join(corpus, 'scp_files', domain), { recursive: true });
  const id = `${dataset}_${name}`;
  appendFileSync(join(corpus, 'scp_files', domain, `${dataset}.scp`), `${id} ${rel}.wav\n`);
  return id;
}
