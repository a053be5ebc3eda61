/**
 * A rare-fit stream's hold on the event loop: a one-task mixture over the index's largest task,
 * packing none, at a seq_len only a few of its records fit (the second-shortest record's length).
 * Prints the stream's open time (spent on the event loop once per held-out set and seq_len: the
 * servability scans), the longest single slice of planning between two yields, and the mean time
 * per batch, all as the server's stream loop runs them (nextAsync, a setImmediate between slices).
 *
 *   npx tsx test/bench/rare-fit-bench.ts --index DIR [--batches 20] [--batch-size 64]
 *
 * Without --index it builds a 20,000-record sample index in a temporary directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildIndex } from '../../src/index/build-index.js';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import type { StreamSession } from '../../src/stream/stream-session.js';
import { openCore, trainSpec } from '../helpers/core-streams.js';
import { rareFit } from '../helpers/rare-fit.js';

const { values } = parseArgs({
  options: {
    index: { type: 'string' },
    batches: { type: 'string', default: '20' },
    'batch-size': { type: 'string', default: '64' },
  },
});
let tmp: string | undefined;
let index = values.index;
if (!index) {
  tmp = mkdtempSync(join(tmpdir(), 'flanstream-rarefit-'));
  await writeSampleCorpus(join(tmp, 'corpus'), { records: 20_000, seed: 0 });
  await buildIndex({
    corpus: join(tmp, 'corpus'),
    out: join(tmp, 'index'),
    workers: 1,
    audioRoots: [SAMPLE_AUDIO_ROOT],
  });
  index = join(tmp, 'index');
}

/** The longest time the stream holds the event loop between two yields, and the time per batch. */
export async function rareFitRun(
  session: StreamSession,
  batches: number,
): Promise<{ worstSliceMs: number; msPerBatch: number }> {
  let worst = 0;
  let since = performance.now();
  const pause = async (): Promise<void> => {
    worst = Math.max(worst, performance.now() - since);
    await new Promise<void>((resolve) => setImmediate(resolve));
    since = performance.now();
  };
  const t0 = performance.now();
  for (let b = 0; b < batches; b++) {
    since = performance.now();
    await session.nextAsync(pause);
    worst = Math.max(worst, performance.now() - since);
  }
  return { worstSliceMs: worst, msPerBatch: (performance.now() - t0) / batches };
}

try {
  const core = await openCore(index);
  const { task, records, fits, seqLen } = rareFit(core.catalog);
  const spec = trainSpec({
    packing: 'none',
    batchSize: Number(values['batch-size']),
    seqLen,
    overlong: 'drop',
    mixture: { weights: { [task]: 1 } },
  });
  const t0 = performance.now();
  const session = core.open({ spec });
  const openMs = performance.now() - t0;
  const r = await rareFitRun(session, Number(values.batches));
  // A second stream of the same held-out set and seq_len: the scans are the catalog's, shared.
  const t1 = performance.now();
  const again = core.open({ spec: { ...spec, seed: 1 } });
  const reopenMs = performance.now() - t1;
  const r2 = await rareFitRun(again, Number(values.batches));
  console.log(
    `task ${task}: ${records} train records, ${fits} fit seq_len ${seqLen}; ${core.catalog.reader.manifest.records} records in the index`,
  );
  console.log('| stream | open ms | worst slice ms | ms per batch |');
  console.log('|---|---:|---:|---:|');
  console.log(`| first | ${openMs.toFixed(1)} | ${r.worstSliceMs.toFixed(1)} | ${r.msPerBatch.toFixed(2)} |`);
  console.log(
    `| second (seed 1) | ${reopenMs.toFixed(1)} | ${r2.worstSliceMs.toFixed(1)} | ${r2.msPerBatch.toFixed(2)} |`,
  );
  core.catalog.close();
} finally {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
