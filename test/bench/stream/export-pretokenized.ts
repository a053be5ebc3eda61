/**
 * Writes the examples a flanstream train stream serves, already tokenized through the chat
 * template, as JSONL ({"input_ids": [...], "labels": [...]}): the input of the hand-written
 * Python loader baseline, so both sides move the same tokens.
 */
import { createWriteStream } from 'node:fs';
import { int32s, segmentColumns } from '../../../clients/ts/wire-decode.js';
import { openCore } from './open-core.js';

const [index, out, countArg] = process.argv.slice(2);
if (!index || !out) throw new Error('usage: export-pretokenized <index> <out.jsonl> [examples]');
const count = Number(countArg ?? 20000);
const core = await openCore(index);
const session = core.open({ spec: { split: 'train', batchSize: 64, seqLen: 16384, packing: 'none', seed: 0 } });
const file = createWriteStream(out);
let written = 0;
while (written < count) {
  const msg = session.next();
  if (!msg || !('batch' in msg)) break;
  const b = msg.batch;
  const tokens = int32s(b.tokens);
  for (const seg of segmentColumns(b)) {
    const ids = Array.from(tokens.subarray(seg.start, seg.start + seg.length));
    const labels = ids.map(() => -100);
    for (const [s, e] of seg.loss) for (let p = s; p < e; p++) labels[p] = ids[p]!;
    if (!file.write(`${JSON.stringify({ input_ids: ids, labels })}\n`))
      await new Promise<void>((r) => file.once('drain', () => r()));
    if (++written >= count) break;
  }
}
await new Promise<void>((resolve) => file.end(resolve));
console.error(`exported ${written} examples to ${out}`);
