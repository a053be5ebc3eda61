import { closeSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AudioResolver } from '../corpus/audio-resolver.js';
import { mostCommonCount, resolveCodec, type CodecInfo } from '../corpus/codec-info.js';
import { hashFile, type CorpusFiles } from '../corpus/corpus-files.js';
import { openCorpus } from '../corpus/open-corpus.js';
import type { QuarantineReason } from '../corpus/quarantine.js';
import { chunks, openRegular } from '../corpus/regular-file.js';
import { normalizeAudioRoots } from '../corpus/scp-path.js';
import { CorpusError } from '../errors.js';
import type { S3Settings } from '../storage/s3-location.js';
import { isS3 } from '../storage/storage.js';
import { templatePieces } from '../tokenize/chat-template.js';
import { TextTokenizer, tokenizerFile } from '../tokenize/text-tokenizer.js';
import { makeVocabLayout } from '../tokenize/vocab-layout.js';
import { digest } from '../util/hash.js';
import { AUDIO_GROUPS_NAME } from './audio-groups.js';
import { compileIndex } from './compile-manifest.js';
import { duplicateEntries } from './duplicate-report.js';
import { DUPLICATES_NAME } from './exclusions.js';
import { discoverShards, type SkippedFile } from './find-shards.js';
import { withIndexLock } from './index-lock.js';
import {
  INDEX_FORMAT_VERSION,
  QUARANTINE_FILE,
  SHARDS_DIR,
  TOKENIZER_FILE,
  type IndexOptions,
  type Manifest,
  type ShardMeta,
} from './format.js';
import { readManifest, writeFileAtomic, writeManifest } from './manifest-io.js';
import { readShardDeps } from './shard-builder.js';
import { buildShards } from './shard-pool.js';
import type { BuildLimits } from './build-limits.js';

export interface BuildOptions {
  /** A directory or s3://bucket/prefix. */
  readonly corpus: string;
  readonly out: string;
  readonly tokenizer?: string;
  readonly workers?: number;
  readonly codebookSize?: number;
  /** Overrides of audio_tokens/codec.json (the `--codec`, `--frame-rate`, `--codebooks` flags). */
  readonly codec?: Partial<Omit<CodecInfo, 'codebookSize'>>;
  /** `--audio-root` prefixes: absolute `.scp` paths under one are read relative to the corpus. */
  readonly audioRoots?: readonly string[];
  readonly maxLineBytes?: number;
  readonly onProgress?: (p: BuildProgress) => void;
  /** Client settings for an s3:// corpus or output (unset: the standard AWS environment). */
  readonly s3?: S3Settings;
  /** Memory bounds of the build (defaults suit any corpus; tests set them tiny to force every spill). */
  readonly limits?: BuildLimits;
}

export interface BuildProgress {
  readonly shardsDone: number;
  readonly shardsTotal: number;
  readonly records: number;
  readonly bytes: number;
}

export interface BuildSummary {
  readonly manifest: Manifest;
  readonly shardsBuilt: number;
  readonly shardsReused: number;
  readonly records: number;
  readonly jsonlBytes: number;
  readonly seconds: number;
  /** Files named like shards outside the layout, not indexed (the CLI lists them). */
  readonly skipped: readonly SkippedFile[];
}

export { findShards } from './find-shards.js';

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

/** Clips sampled per `.scp` file to infer the codebook count when neither codec.json nor a flag gives it. */
const CODEBOOK_SAMPLE_PER_SCP = 8;

/** A regular file's bytes in chunks (a quarantine file of a million entries is not read whole). */
function* fileChunks(path: string): Generator<Buffer> {
  const o = openRegular(path);
  if (!o.ok) throw new CorpusError(path, `cannot read the shard's quarantine file: ${o.detail}; rebuild the index`);
  try {
    yield* chunks(o.fd);
  } finally {
    closeSync(o.fd);
  }
}

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

/** A checked corpus, its JSONL shards and the index options of a build (one-process or partitioned). */
export interface BuildPlan {
  /** The corpus location (an absolute directory or the s3:// URL) and its files, open until the build closes them. */
  readonly corpus: string;
  readonly files: CorpusFiles;
  readonly out: string;
  readonly sources: readonly string[];
  /** Files under metadata/ named like shards but outside the layout (reported, not indexed). */
  readonly skipped: readonly SkippedFile[];
  readonly options: IndexOptions;
  readonly tok: TextTokenizer;
  readonly limits: BuildLimits;
}

/** Runs `fn` on the build's plan, closing the corpus's files (an S3 client thread) after it. */
export async function withPlan<T>(opts: BuildOptions, fn: (plan: BuildPlan) => Promise<T>): Promise<T> {
  const plan = planBuild(opts);
  try {
    return await fn(plan);
  } finally {
    plan.files.close();
  }
}

/** Checks the corpus and plans the build; the caller closes `plan.files` when done (withPlan). */
export function planBuild(opts: BuildOptions): BuildPlan {
  const files = openCorpus(opts.corpus, opts.s3);
  try {
    return planWith(files, opts);
  } catch (err) {
    files.close();
    throw err;
  }
}

function planWith(files: CorpusFiles, opts: BuildOptions): BuildPlan {
  const corpus = files.root;
  const out = resolve(opts.out);
  if (!files.isDir(''))
    throw new CorpusError(
      corpus,
      isS3(corpus) ? 'no corpus here: nothing is stored under this prefix' : 'corpus directory does not exist',
    );
  if (!files.isDir('metadata')) throw new CorpusError(corpus, 'not an Audio-FLAN corpus: no metadata/ directory');
  const { sources, skipped } = discoverShards(files);
  if (sources.length === 0)
    throw new CorpusError(corpus, 'holds no JSONL shards under metadata/<domain>/<ug>/<split>/<dataset>/jsonl/');

  const audioRoots = normalizeAudioRoots(opts.audioRoots ?? []);
  const codec = resolveCodec(files, { ...opts.codec, codebookSize: opts.codebookSize });
  const codebooks =
    codec.codebooks || mostCommonCount(new AudioResolver(files, audioRoots).sampleCodebooks(CODEBOOK_SAMPLE_PER_SCP));
  const options: IndexOptions = {
    tokenizer: opts.tokenizer ?? 'qwen3',
    codebookSize: codec.codebookSize,
    maxLineBytes: opts.maxLineBytes ?? 1 << 20,
    codec: { name: codec.name, frameRate: codec.frameRate, codebooks },
    audioRoots,
  };
  return {
    corpus,
    files,
    out,
    sources,
    skipped,
    options,
    tok: TextTokenizer.load(options.tokenizer),
    limits: opts.limits ?? {},
  };
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

/**
 * Compiles the manifest of a complete set of shards and makes it the index: the corpus-wide
 * steps (task table, audio groups, quarantine report, fingerprint) and the removal of files no
 * manifest names. The one-process build and the merge of a partitioned build both end here, so
 * they produce the same index.
 */
export async function finishIndex(plan: BuildPlan, shards: ShardMeta[]): Promise<Manifest> {
  const { corpus, out, options, tok } = plan;
  if (shards.every((s) => s.records === 0)) {
    throw new CorpusError(
      corpus,
      `holds nothing usable: all ${plan.sources.length} shards were empty or quarantined (${shards.reduce((n, s) => n + Object.values(s.quarantined).reduce((a, b) => a + (b ?? 0), 0), 0)} problems; first: ${shards.find((s) => s.firstProblem)?.firstProblem ?? 'none'})`,
    );
  }
  // A system prompt is tokenized with the index's own copy: the server opens nothing outside the index.
  writeFileAtomic(join(out, TOKENIZER_FILE), readFileSync(tokenizerFile(options.tokenizer)));
  const { manifest, duplicates } = compileIndex(
    out,
    shards,
    makeVocabLayout(tok, options.codec.codebooks, options.codebookSize, options.codec),
    options,
    await templatePieces(tok),
    plan.limits.bucketRecords,
  );
  // The report is the shards' own quarantine files end to end, in manifest order, streamed, each
  // followed by its records that repeat an earlier shard's uuid (found only now, across shards).
  writeFileAtomic(
    join(out, QUARANTINE_FILE),
    (function* () {
      for (const [i, s] of manifest.shards.entries()) {
        if (s.quarantineFile) yield* fileChunks(join(out, s.quarantineFile));
        yield* duplicateEntries(out, manifest.shards, duplicates, i);
      }
    })(),
  );
  writeManifest(out, manifest);

  // Only now are files of older builds unreferenced; removing them cannot break a valid index.
  // Temporaries are those of interrupted runs.
  const live = new Set(
    manifest.shards.flatMap((s) =>
      [s.file, s.quarantineFile].filter((f) => f !== '').map((f) => f.slice(SHARDS_DIR.length + 1)),
    ),
  );
  for (const f of readdirSync(join(out, SHARDS_DIR))) {
    if (!live.has(f)) unlinkSync(join(out, SHARDS_DIR, f));
  }
  for (const f of readdirSync(out)) {
    if (
      f.endsWith('.tmp') ||
      (AUDIO_GROUPS_NAME.test(f) && f !== manifest.audioGroups.file) ||
      (DUPLICATES_NAME.test(f) && f !== manifest.exclusions.file)
    )
      unlinkSync(join(out, f));
  }
  return manifest;
}

/** Builds or updates the index in `opts.out`, holding its lock (see IndexLock) throughout. */
export async function buildIndex(opts: BuildOptions): Promise<BuildSummary> {
  return withIndexLock(resolve(opts.out), () => buildLocked(opts));
}

async function buildLocked(opts: BuildOptions): Promise<BuildSummary> {
  const started = performance.now();
  return withPlan(opts, async (plan) => {
    const { kept, built } = await buildSources(plan, plan.sources, opts);
    const manifest = await finishIndex(plan, [...kept, ...built]);
    return {
      manifest,
      shardsBuilt: built.length,
      shardsReused: kept.length,
      records: manifest.records,
      jsonlBytes: built.reduce((n, s) => n + s.jsonlBytes, 0),
      seconds: (performance.now() - started) / 1000,
      skipped: plan.skipped,
    };
  });
}
