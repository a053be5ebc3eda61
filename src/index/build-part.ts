import { rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CorpusError } from '../errors.js';
import { isS3 } from '../storage/storage.js';
import { digest } from '../util/hash.js';
import { finishIndex } from './build-index.js';
import { withPlan, type BuildOptions, type BuildPlan } from './build-plan.js';
import { buildSources } from './build-sources.js';
import { IndexLock, withIndexLock } from './index-lock.js';
import { INDEX_FORMAT_VERSION, type Manifest, type ShardMeta } from './format.js';
import { PARTS_DIR, listPartRecords, writePartRecord, type PartRecord } from './part-file.js';
import { assignParts, partName, type PartId } from './partition.js';

/**
 * A partitioned index build: N processes (a Kubernetes Indexed Job, a Slurm array) each build the
 * shard files of their share of the JSONL files into one output location, and a final `--merge`
 * compiles the manifest from the parts' records. Shard files are named by content and every part
 * writes different ones, so parts never touch each other's files; the merge runs the same
 * corpus-wide step as the one-process build (finishIndex), so the index is the same, byte for byte.
 */

interface Listed {
  readonly source: string;
  readonly bytes: number;
  readonly mtimeMs: number;
}

function listCorpus(plan: BuildPlan): { files: Listed[]; digest: string } {
  const files = plan.sources.map((source) => {
    const st = plan.files.stat(source);
    if (!st)
      throw new CorpusError(
        plan.files.describe(source),
        'disappeared while the build was listing the corpus; run again',
      );
    return { source, bytes: st.size, mtimeMs: st.mtimeMs };
  });
  return { files, digest: digest(JSON.stringify(files.map((f) => [f.source, f.bytes]))) };
}

export interface PartSummary {
  readonly file: string;
  readonly sources: number;
  readonly shardsBuilt: number;
  readonly shardsReused: number;
  readonly records: number;
  readonly jsonlBytes: number;
  readonly seconds: number;
}

/** These write a directory (a shared filesystem); parts-to.ts stages them for an s3:// output. */
function localOnly(opts: BuildOptions): void {
  if (isS3(opts.out))
    throw new CorpusError(
      opts.out,
      'buildPart/mergeParts write a directory; for an s3:// output use buildPartTo/mergePartsTo (parts-to.ts), as the CLI does',
    );
}

export async function buildPart(opts: BuildOptions & { readonly part: PartId }): Promise<PartSummary> {
  const started = performance.now();
  localOnly(opts);
  return withPlan(opts, (plan) => buildPlannedPart(plan, opts, started));
}

async function buildPlannedPart(
  plan: BuildPlan,
  opts: BuildOptions & { readonly part: PartId },
  started: number,
): Promise<PartSummary> {
  const busy = IndexLock.refusal(plan.out);
  if (busy) throw busy;
  const listing = listCorpus(plan);
  const owner = assignParts(listing.files, opts.part.count);
  const mine = listing.files.filter((_, i) => owner[i] === opts.part.index);
  const { kept, built } = await buildSources(
    plan,
    mine.map((f) => f.source),
    opts,
  );
  const record: PartRecord = {
    formatVersion: INDEX_FORMAT_VERSION,
    part: opts.part,
    corpus: plan.corpus,
    listing: listing.digest,
    tokenizerFingerprint: plan.tok.fingerprint,
    options: plan.options,
    files: mine.map((f) => [f.source, f.bytes, f.mtimeMs] as const),
    shards: [...kept, ...built],
  };
  return {
    file: writePartRecord(plan.out, record),
    sources: mine.length,
    shardsBuilt: built.length,
    shardsReused: kept.length,
    records: record.shards.reduce((n, s) => n + s.records, 0),
    jsonlBytes: built.reduce((n, s) => n + s.jsonlBytes, 0),
    seconds: (performance.now() - started) / 1000,
  };
}

/** Why a part's record cannot be merged into an index of `plan`, or undefined when it can. */
function refusal(plan: BuildPlan, listing: { files: Listed[]; digest: string }, rec: PartRecord): string | undefined {
  const name = partName(rec.part);
  const rerun = `rerun \`flanstream index <corpus> --out <dir> --part ${name}\``;
  if (rec.formatVersion !== INDEX_FORMAT_VERSION)
    return `part ${name} is stale: built by another flanstream version (index format ${rec.formatVersion}, this one writes ${INDEX_FORMAT_VERSION}); ${rerun}`;
  if (
    rec.tokenizerFingerprint !== plan.tok.fingerprint ||
    JSON.stringify(rec.options) !== JSON.stringify(plan.options)
  ) {
    return `part ${name} was built with other settings (${JSON.stringify(rec.options)}, tokenizer ${rec.tokenizerFingerprint}) than this merge (${JSON.stringify(plan.options)}, tokenizer ${plan.tok.fingerprint}); merge with the parts' --tokenizer/--codebook-size or rebuild the parts`;
  }
  if (rec.listing !== listing.digest) {
    if (rec.corpus !== plan.corpus)
      return `part ${name} is from another corpus (${rec.corpus}, not ${plan.corpus}); rebuild every part from this corpus`;
    return `part ${name} is stale: the corpus's JSONL files were added, removed or resized since it was built; rebuild every part`;
  }
  const now = new Map(listing.files.map((f) => [f.source, f]));
  for (const [source, bytes, mtimeMs] of rec.files) {
    const f = now.get(source);
    if (!f || f.bytes !== bytes || f.mtimeMs !== mtimeMs)
      return `part ${name} is stale: ${source} changed since it was built; ${rerun}`;
  }
  for (const s of rec.shards) {
    let size: number;
    try {
      size = statSync(join(plan.out, s.file)).size;
    } catch {
      size = -1;
    }
    if (size !== s.bytes)
      return `part ${name} is incomplete: its shard file ${s.file} is ${size < 0 ? 'missing' : `${size} bytes, not ${s.bytes}`}; ${rerun}`;
  }
  return undefined;
}

export interface MergeSummary {
  readonly manifest: Manifest;
  readonly parts: number;
  readonly seconds: number;
}

/**
 * Compiles the index from every part's record once all N are present and current, then removes
 * parts/ (the manifest supersedes its records). Refuses, naming the part and what to rerun, when a
 * part is missing, damaged, stale, or built from another corpus or with another tokenizer.
 */
export async function mergeParts(opts: BuildOptions): Promise<MergeSummary> {
  return withIndexLock(resolve(opts.out), () => mergeLocked(opts));
}

async function mergeLocked(opts: BuildOptions): Promise<MergeSummary> {
  const started = performance.now();
  localOnly(opts);
  return withPlan(opts, (plan) => mergePlanned(plan, started));
}

async function mergePlanned(plan: BuildPlan, started: number): Promise<MergeSummary> {
  const found = listPartRecords(plan.out);
  if (found.length === 0)
    throw new CorpusError(
      plan.out,
      'no parts to merge (parts/ is empty or missing): run `flanstream index <corpus> --out <dir> --part I/N` for every I of N first',
    );
  const counts = [...new Set(found.map((f) => f.part.count))];
  if (counts.length > 1)
    throw new CorpusError(
      plan.out,
      `parts/ holds parts of ${counts.join(' and ')}-way builds (${found.map((f) => f.file).join(', ')}); remove the stale ones`,
    );
  const count = counts[0]!;
  const damaged = found.find((f) => f.record === undefined);
  if (damaged)
    throw new CorpusError(
      join(plan.out, damaged.file),
      `part ${partName(damaged.part)} record is damaged or half-written; rerun \`flanstream index <corpus> --out <dir> --part ${partName(damaged.part)}\``,
    );
  const present = new Set(found.map((f) => f.part.index));
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !present.has(i));
  if (missing.length > 0) {
    throw new CorpusError(
      plan.out,
      `cannot merge: ${missing.length} of ${count} parts missing (${missing.map((i) => `${i}/${count}`).join(', ')}); run \`flanstream index <corpus> --out <dir> --part I/${count}\` for each`,
    );
  }
  const listing = listCorpus(plan);
  const shards: ShardMeta[] = [];
  for (const f of found) {
    const why = refusal(plan, listing, f.record!);
    if (why) throw new CorpusError(plan.out, why);
    shards.push(...f.record!.shards);
  }
  const covered = new Set(shards.map((s) => s.source));
  const uncovered = plan.sources.filter((s) => !covered.has(s));
  if (uncovered.length > 0)
    throw new CorpusError(
      plan.out,
      `cannot merge: no part built ${uncovered[0]} (${uncovered.length} files); rebuild every part`,
    );
  const manifest = await finishIndex(plan, shards);
  rmSync(join(plan.out, PARTS_DIR), { recursive: true, force: true });
  return { manifest, parts: count, seconds: (performance.now() - started) / 1000 };
}
