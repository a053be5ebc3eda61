/**
 * An index build from start to end: the plan (build-plan.ts), the shards built or kept
 * (build-sources.ts), then finishIndex, which compiles the manifest and makes it the index. The
 * one-process build runs all three under the index lock; a partitioned build (build-part.ts)
 * runs the steps in separate processes and ends in the same finishIndex.
 */
import { closeSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chunks, openRegular } from '../corpus/regular-file.js';
import { CorpusError } from '../errors.js';
import { templatePieces } from '../tokenize/chat-template.js';
import { tokenizerFile } from '../tokenize/text-tokenizer.js';
import { makeVocabLayout } from '../tokenize/vocab-layout.js';
import { AUDIO_GROUPS_NAME } from './audio-groups.js';
import { withPlan, type BuildOptions, type BuildPlan } from './build-plan.js';
import { buildSources } from './build-sources.js';
import { compileIndex } from './compile-manifest.js';
import { duplicateEntries } from './duplicate-report.js';
import { DUPLICATES_NAME } from './exclusions.js';
import type { SkippedFile } from './find-shards.js';
import { withIndexLock } from './index-lock.js';
import { QUARANTINE_FILE, SHARDS_DIR, TOKENIZER_FILE, type Manifest, type ShardMeta } from './format.js';
import { writeFileAtomic, writeManifest } from './manifest-io.js';

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
