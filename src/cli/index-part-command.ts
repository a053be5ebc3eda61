import type { BuildOptions } from '../index/build-index.js';
import { buildPartTo, mergePartsTo } from '../index/parts-to.js';
import { partName, type PartId } from '../index/partition.js';
import { formatBytes } from './format-table.js';

/** `flanstream index <corpus> --out <dir> --part I/N`: one process of a partitioned build. */
export async function indexPartCommand(corpus: string, opts: { out: string; tokenizer: string; workers: number; part: PartId; stage?: string } & Pick<BuildOptions, 'codebookSize' | 'codec' | 'audioRoots' | 's3'>): Promise<void> {
  const s = await buildPartTo({ corpus, out: opts.out, tokenizer: opts.tokenizer, workers: opts.workers, codebookSize: opts.codebookSize, codec: opts.codec, audioRoots: opts.audioRoots, s3: opts.s3, part: opts.part, stage: opts.stage });
  console.log(`part ${partName(opts.part)} written to ${opts.out}/${s.file}`);
  console.log(`  files: ${s.sources} (${s.shardsBuilt} shards built, ${s.shardsReused} unchanged); records: ${s.records.toLocaleString('en-US')}`);
  console.log(`  indexed ${formatBytes(s.jsonlBytes)} of JSONL in ${s.seconds.toFixed(2)} s`);
  console.log(`  when every part is done: flanstream index ${corpus} --out ${opts.out} --merge`);
}

/** `flanstream index <corpus> --out <dir> --merge`: the manifest of a partitioned build. */
export async function indexMergeCommand(corpus: string, opts: { out: string; tokenizer: string; stage?: string } & Pick<BuildOptions, 'codebookSize' | 'codec' | 'audioRoots' | 's3'>): Promise<void> {
  const s = await mergePartsTo({ corpus, out: opts.out, tokenizer: opts.tokenizer, codebookSize: opts.codebookSize, codec: opts.codec, audioRoots: opts.audioRoots, s3: opts.s3, stage: opts.stage });
  const m = s.manifest;
  console.log(`index ${m.fingerprint} merged from ${s.parts} parts into ${opts.out} in ${s.seconds.toFixed(2)} s`);
  console.log(`  shards: ${m.shards.length}; records: ${m.records.toLocaleString('en-US')} in ${m.tasks.length} tasks; quarantined: ${m.quarantined}`);
}
