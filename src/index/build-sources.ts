/**
 * The shard-building step of a build: which shards of the previous index can be kept (source,
 * options and every audio file they used unchanged) and building the others in the shard pool.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hashFile, type CorpusFiles } from '../corpus/corpus-files.js';
import type { QuarantineReason } from '../corpus/quarantine.js';
import { digest } from '../util/hash.js';
import type { BuildOptions, BuildPlan } from './build-plan.js';
import { INDEX_FORMAT_VERSION, SHARDS_DIR, type Manifest, type ShardMeta } from './format.js';
import { readManifest } from './manifest-io.js';
import { readShardDeps } from './shard-builder.js';
import { buildShards } from './shard-pool.js';

/**
 * Audio references that failed depend on files the shard's deps cannot list (an scp entry or a
 * .npy added or fixed later), so a shard holding such quarantined records is always rebuilt.
 */
const AUDIO_REASONS: ReadonlySet<QuarantineReason> = new Set([
  'audio_id_unresolved',
  'path_escape',
  'npy_missing',
  'npy_malformed',
  'absolute_path',
  'codebooks_mismatch',
  'audio_window',
  'not_regular_file',
]);

/** The digest an AudioResolver records for an scp file (never read unless regular: a FIFO would block). */
function scpFileDigest(files: CorpusFiles, path: string): string {
  const got = files.read(path);
  return got.ok ? digest(got.bytes) : `unreadable: ${got.detail}`;
}

/** A previous shard is reused when its source, options and every audio file it used are unchanged (the source is hashed only when there is one). */
function reusable(
  old: ShardMeta | undefined,
  files: CorpusFiles,
  out: string,
  hash: () => string,
  scpDigest: (file: string) => string,
): old is ShardMeta {
  if (!old || old.sourceHash !== hash()) return false;
  if (Object.keys(old.quarantined).some((r) => AUDIO_REASONS.has(r as QuarantineReason))) return false;
  if (old.quarantineFile && !existsSync(join(out, old.quarantineFile))) return false;
  try {
    if (statSync(join(out, old.file)).size !== old.bytes) return false;
    const deps = readShardDeps(out, old);
    if (!deps) return false;
    for (const [file, size, mtimeMs] of deps.npy) {
      const st = files.stat(file);
      if (st?.size !== size || st.mtimeMs !== mtimeMs) return false;
    }
    for (const [scp, scpHash] of deps.scp) {
      if (scpDigest(scp) !== scpHash) return false;
    }
  } catch {
    return false;
  }
  return true;
}

/**
 * Builds the shards of `sources` (all of the corpus, or one part's share), reusing those of the
 * previous manifest in `out` whose source and audio files are unchanged.
 */
export async function buildSources(
  plan: BuildPlan,
  sources: readonly string[],
  opts: BuildOptions,
): Promise<{ kept: ShardMeta[]; built: ShardMeta[] }> {
  const { files, out, options, tok } = plan;
  mkdirSync(join(out, SHARDS_DIR), { recursive: true });
  let previous: Manifest | undefined;
  try {
    previous = readManifest(out);
  } catch {
    previous = undefined;
  }
  const sameSettings =
    previous &&
    previous.formatVersion === INDEX_FORMAT_VERSION &&
    previous.vocab.tokenizerFingerprint === tok.fingerprint &&
    JSON.stringify(previous.options) === JSON.stringify(options);
  const oldBySource = new Map((sameSettings ? (previous?.shards ?? []) : []).map((s) => [s.source, s]));

  const kept: ShardMeta[] = [];
  const jobs = [];
  const scpDigests = new Map<string, string>();
  const scpDigest = (file: string): string => {
    let d = scpDigests.get(file);
    if (d === undefined) scpDigests.set(file, (d = scpFileDigest(files, file)));
    return d;
  };
  for (const source of sources) {
    const old = oldBySource.get(source);
    if (reusable(old, files, out, () => hashFile(files, source), scpDigest)) kept.push(old);
    else jobs.push({ source, indexDir: out, options });
  }
  let done = kept.length;
  let records = kept.reduce((n, s) => n + s.records, 0);
  let bytes = 0;
  const built = await buildShards(
    jobs,
    opts.workers ?? 1,
    tok,
    files,
    (meta) => {
      done++;
      records += meta.records;
      bytes += meta.jsonlBytes;
      opts.onProgress?.({ shardsDone: done, shardsTotal: sources.length, records, bytes });
    },
    plan.limits,
  );
  return { kept, built };
}
