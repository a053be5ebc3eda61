import type { BuildOptions } from '../index/build-plan.js';
import { partsToWaitFor } from '../index/part-file.js';
import { buildPartTo, mergePartsTo, presentParts } from '../index/parts-to.js';
import { partName, type PartId } from '../index/partition.js';
import { formatBytes } from './format-table.js';

/** `flanstream index <corpus> --out <dir> --part I/N`: one process of a partitioned build. */
export async function indexPartCommand(
  corpus: string,
  opts: { out: string; tokenizer: string; workers: number; part: PartId; stage?: string } & Pick<
    BuildOptions,
    'codebookSize' | 'codec' | 'audioRoots' | 's3'
  >,
): Promise<void> {
  const s = await buildPartTo({
    corpus,
    out: opts.out,
    tokenizer: opts.tokenizer,
    workers: opts.workers,
    codebookSize: opts.codebookSize,
    codec: opts.codec,
    audioRoots: opts.audioRoots,
    s3: opts.s3,
    part: opts.part,
    stage: opts.stage,
  });
  console.log(`part ${partName(opts.part)} written to ${opts.out}/${s.file}`);
  console.log(
    `  files: ${s.sources} (${s.shardsBuilt} shards built, ${s.shardsReused} unchanged); records: ${s.records.toLocaleString('en-US')}`,
  );
  console.log(`  indexed ${formatBytes(s.jsonlBytes)} of JSONL in ${s.seconds.toFixed(2)} s`);
  console.log(`  when every part is done: flanstream index ${corpus} --out ${opts.out} --merge`);
}

/** How often `--merge --wait` looks for the parts again. */
const WAIT_POLL_MS = 2000;

/**
 * `flanstream index <corpus> --out <dir> --merge [--wait SECONDS]`: the manifest of a partitioned
 * build. With --wait it first waits, up to SECONDS, until every part's record is there (a
 * Kubernetes Job has no dependency on another Job), looking without the index lock: the parts are
 * still writing. Then it merges once; any refusal (a stale part, another tokenizer) stops it.
 */
export async function indexMergeCommand(
  corpus: string,
  opts: { out: string; tokenizer: string; stage?: string; waitSeconds: number } & Pick<
    BuildOptions,
    'codebookSize' | 'codec' | 'audioRoots' | 's3'
  >,
): Promise<void> {
  const deadline = Date.now() + opts.waitSeconds * 1000;
  let said = '';
  for (
    let waiting = partsToWaitFor(await presentParts(opts));
    waiting && Date.now() + WAIT_POLL_MS <= deadline;
    waiting = partsToWaitFor(await presentParts(opts))
  ) {
    if (waiting !== said) console.log(`waiting for parts in ${opts.out}: ${(said = waiting)}`);
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
  const s = await mergePartsTo({
    corpus,
    out: opts.out,
    tokenizer: opts.tokenizer,
    codebookSize: opts.codebookSize,
    codec: opts.codec,
    audioRoots: opts.audioRoots,
    s3: opts.s3,
    stage: opts.stage,
  });
  const m = s.manifest;
  console.log(`index ${m.fingerprint} merged from ${s.parts} parts into ${opts.out} in ${s.seconds.toFixed(2)} s`);
  console.log(
    `  shards: ${m.shards.length}; records: ${m.records.toLocaleString('en-US')} in ${m.tasks.length} tasks; quarantined: ${m.quarantined}`,
  );
}
