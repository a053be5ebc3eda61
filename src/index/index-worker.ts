import { parentPort, workerData } from 'node:worker_threads';
import { AudioResolver } from '../corpus/audio-resolver.js';
import type { CorpusLocation } from '../corpus/corpus-files.js';
import { openCorpus } from '../corpus/open-corpus.js';
import { carry } from '../errors.js';
import { EncodeCache } from '../tokenize/encode-cache.js';
import { TextTokenizer } from '../tokenize/text-tokenizer.js';
import { buildShard, type ShardJob } from './shard-builder.js';

/** A pool worker: one tokenizer (with its remembered texts) and audio resolver, shard jobs in, shard metadata out. */
const { corpus, tokenizer, audioRoots } = workerData as { corpus: CorpusLocation; tokenizer: string; audioRoots: readonly string[] };
const encoder = new EncodeCache(TextTokenizer.load(tokenizer));
const audio = new AudioResolver(openCorpus(corpus.location, corpus.s3), audioRoots);
const port = parentPort;
if (!port) throw new Error('index-worker must run as a worker thread');

port.on('message', (job: ShardJob) => {
  buildShard(job, encoder, audio).then(
    (meta) => port.postMessage({ ok: true, meta }),
    // A CorpusError (a file that cannot be written) crosses as a FlanError, so the CLI reports it as one.
    (err: unknown) => port.postMessage({ ok: false, error: carry(err) }),
  );
});
