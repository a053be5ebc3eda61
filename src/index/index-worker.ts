import { parentPort, workerData } from 'node:worker_threads';
import type { CorpusLocation } from '../corpus/corpus-files.js';
import { openCorpus } from '../corpus/open-corpus.js';
import { carry } from '../errors.js';
import { TextTokenizer } from '../tokenize/text-tokenizer.js';
import { buildShard, type ShardJob } from './shard-builder.js';
import { shardTools } from './shard-tools.js';
import type { BuildLimits } from './build-limits.js';

/** A pool worker: one tokenizer and one set of shard tools (clips, texts), shard jobs in, shard metadata out. */
const { corpus, tokenizer, audioRoots, limits } = workerData as {
  corpus: CorpusLocation;
  tokenizer: string;
  audioRoots: readonly string[];
  limits: BuildLimits;
};
const tools = shardTools(TextTokenizer.load(tokenizer), openCorpus(corpus.location, corpus.s3), audioRoots, limits);
const port = parentPort;
if (!port) throw new Error('index-worker must run as a worker thread');

port.on('message', (job: ShardJob) => {
  buildShard(job, tools).then(
    (meta) => port.postMessage({ ok: true, meta }),
    // A CorpusError (a file that cannot be written) crosses as a FlanError, so the CLI reports it as one.
    (err: unknown) => port.postMessage({ ok: false, error: carry(err) }),
  );
});
