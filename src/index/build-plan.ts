/**
 * What a build is asked (BuildOptions) and what it works from (BuildPlan): the corpus checked, its
 * JSONL shards found, and the index options resolved (tokenizer, codec, codebooks sampled from
 * the corpus when nothing gives them). Shared by the one-process and the partitioned build.
 */
import { resolve } from 'node:path';
import { AudioResolver } from '../corpus/audio-resolver.js';
import { mostCommonCount, resolveCodec, type CodecInfo } from '../corpus/codec-info.js';
import type { CorpusFiles } from '../corpus/corpus-files.js';
import { openCorpus } from '../corpus/open-corpus.js';
import { normalizeAudioRoots } from '../corpus/scp-path.js';
import { CorpusError } from '../errors.js';
import type { S3Settings } from '../storage/s3-location.js';
import { isS3 } from '../storage/storage.js';
import { TextTokenizer } from '../tokenize/text-tokenizer.js';
import type { BuildLimits } from './build-limits.js';
import { discoverShards, type SkippedFile } from './find-shards.js';
import type { IndexOptions } from './format.js';

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

/** Clips sampled per `.scp` file to infer the codebook count when neither codec.json nor a flag gives it. */
const CODEBOOK_SAMPLE_PER_SCP = 8;

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
