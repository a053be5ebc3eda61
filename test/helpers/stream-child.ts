/**
 * A trainer process for kill tests: `node <childScript(stream-child.ts)> <target> <pauseAfter>`
 * opens a train stream, prints `batch <step>` per batch, and after `pauseAfter` batches (0 =
 * never) stops reading and prints `paused`. It then idles until killed.
 */
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { WireResponse } from '../../clients/ts/wire-types.js';

const [target = '', pauseAfter = '0'] = process.argv.slice(2);
const call = new FlanStreamClient(target).streamBatches();
let n = 0;
call.on('data', (r: WireResponse) => {
  if (!r.batch) return;
  process.stdout.write(`batch ${r.batch.step}\n`);
  if (++n === Number(pauseAfter)) {
    call.pause();
    process.stdout.write('paused\n');
  }
});
call.on('error', (e: Error) => process.stdout.write(`error ${e.message}\n`));
call.write({ spec: { split: 'train', batchSize: 8, seqLen: 8192, packing: 'packed', seed: 1 } });
setInterval(() => undefined, 60_000);
