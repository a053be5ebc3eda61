/**
 * Hand-written corpora for edge cases the seeded sample corpus never produces (text-only shards,
 * duplicate uuids across shards, odd files in the layout). Records are plain CONTRACT §2 JSON
 * written in the Audio-FLAN directory layout; nothing here uses the indexer's own code.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
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
