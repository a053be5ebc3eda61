import { existsSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CorpusError } from '../errors.js';
import { isS3 } from '../storage/storage.js';
import type { Published } from '../storage/s3-upload.js';
import type { BuildOptions } from './build-plan.js';
import { buildPart, mergeParts, type MergeSummary, type PartSummary } from './build-part.js';
import { checkOut, publishIndex, stageFor } from './build-to.js';
import { SHARDS_DIR } from './format.js';
import { PARTS_DIR, listPartRecords, partOfName } from './part-file.js';
import { partName, type PartId } from './partition.js';

/**
 * A partitioned build whose parts share an `s3://` output instead of a filesystem: each part
 * builds its share in a local stage and uploads its shard files, then its part record (last, so a
 * record in the bucket means its shards are there); the merge fetches the part records and the
 * files they name into its own stage, merges there exactly as on disk (so the index is the
 * one-process index, byte for byte), publishes it manifest-last and deletes the consumed records.
 */
export interface StagedOptions extends BuildOptions {
  /** Local directory to build (a part) or merge in (default: one per --out, and per part, under the temp dir). */
  readonly stage?: string;
}

export async function buildPartTo(
  opts: StagedOptions & { readonly part: PartId },
): Promise<PartSummary & { published?: Published }> {
  if (!isS3(opts.out)) return buildPart(opts);
  const settings = opts.s3 ?? {};
  await checkOut(opts.out, settings);
  const stage = stageFor(opts, `-part-${partName(opts.part).replace('/', '-of-')}`);
  // A stage reused from an earlier run of another part or N must not send its records along.
  rmSync(join(stage, PARTS_DIR), { recursive: true, force: true });
  const summary = await buildPart({ ...opts, out: stage });
  const record = listPartRecords(stage).find((r) => r.file === summary.file)?.record;
  if (!record)
    throw new CorpusError(
      join(stage, summary.file),
      'the part record just written cannot be read back; run the part again',
    );
  const mine = new Set([
    summary.file,
    ...record.shards.flatMap((s) => [s.file, s.quarantineFile]).filter((f) => f !== ''),
  ]);
  const { publishDirectory } = await import('../storage/s3-upload.js');
  const published = await publishDirectory(stage, opts.out, settings, {
    last: [summary.file],
    immutable: (f) => f.startsWith(`${SHARDS_DIR}/`),
    skip: (f) => !mine.has(f),
  });
  return { ...summary, published };
}

export async function mergePartsTo(opts: StagedOptions): Promise<MergeSummary & { published?: Published }> {
  if (!isS3(opts.out)) return mergeParts(opts);
  const settings = opts.s3 ?? {};
  await checkOut(opts.out, settings);
  const stage = stageFor(opts);
  const { fetchFiles, listUnder } = await import('../storage/s3-download.js');
  // The records in the bucket are the parts; whatever an earlier merge left in the stage is not.
  rmSync(join(stage, PARTS_DIR), { recursive: true, force: true });
  const records = (await listUnder(opts.out, settings, PARTS_DIR)).map((o) => o.path);
  await fetchFiles(opts.out, settings, records, stage);
  // The files the parts name; one the bucket lacks stays missing, and the merge refuses naming its part.
  // Files are named by their content: one already in the stage (from an earlier merge) at its size is that file.
  const have = (f: string, bytes?: number): boolean =>
    existsSync(join(stage, f)) && (bytes === undefined || statSync(join(stage, f)).size === bytes);
  const named = listPartRecords(stage).flatMap(
    (r) => r.record?.shards.flatMap((s) => [[s.file, s.bytes] as const, [s.quarantineFile, undefined] as const]) ?? [],
  );
  const wanted = named.filter(([f, bytes]) => f !== '' && !have(f, bytes)).map(([f]) => f);
  await fetchFiles(opts.out, settings, [...new Set(wanted)].sort(), stage);
  const summary = await mergeParts({ ...opts, out: stage });
  const published = await publishIndex(stage, opts.out, settings, (f) => f.startsWith(`${PARTS_DIR}/`));
  return { ...summary, published };
}

/** The parts whose records are in `out` (a directory or s3://), read without taking the index lock. */
export async function presentParts(opts: Pick<StagedOptions, 'out' | 's3'>): Promise<PartId[]> {
  if (!isS3(opts.out)) return listPartRecords(opts.out).map((r) => r.part);
  const { listUnder } = await import('../storage/s3-download.js');
  return (await listUnder(opts.out, opts.s3 ?? {}, PARTS_DIR)).flatMap((o) => partOfName(basename(o.path)) ?? []);
}
