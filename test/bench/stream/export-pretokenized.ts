/**
 * Writes the examples a flanstream train stream serves, already tokenized through the chat
 * template, as JSONL ({"input_ids": [...], "labels": [...]}): the input of the hand-written
 * Python loader baseline, so both sides move the same tokens.
 */
import { createWriteStream } from 'node:fs';
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
  const tokens = new Int32Array(b.tokens.buffer, b.tokens.byteOffset, b.tokens.length / 4);
  let at = 0;
  let span = 0;
  for (const len of b.segLength) {
    const ids = Array.from(tokens.subarray(at, at + len));
    const labels = ids.map(() => -100);
    while (span < b.lossSpans.length && (b.lossSpans[span] ?? 0) < at + len) {
      for (let p = b.lossSpans[span]!; p < b.lossSpans[span + 1]!; p++) labels[p - at] = ids[p - at]!;
      span += 2;
    }
    if (!file.write(`${JSON.stringify({ input_ids: ids, labels })}\n`)) await new Promise<void>((r) => file.once("drain", () => r()));
    at += len;
    if (++written >= count) break;
  }
}
await new Promise<void>((resolve) => file.end(resolve));
console.error(`exported ${written} examples to ${out}`);
