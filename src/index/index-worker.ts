import { parentPort, workerData } from 'node:worker_threads';
import { AudioResolver } from '../corpus/audio-resolver.js';
import { TextTokenizer } from '../tokenize/text-tokenizer.js';
import { buildShard, type ShardJob } from './shard-builder.js';

/** A pool worker: one tokenizer and audio resolver, shard jobs in, shard metadata out. */
const { corpus, tokenizer } = workerData as { corpus: string; tokenizer: string };
const tok = TextTokenizer.load(tokenizer);
const audio = new AudioResolver(corpus);
const port = parentPort;
if (!port) throw new Error('index-worker must run as a worker thread');

port.on('message', (job: ShardJob) => {
  buildShard(job, tok, audio).then(
    (meta) => port.postMessage({ ok: true, meta }),
    (err: unknown) => port.postMessage({ ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
  );
});
