import { Worker } from 'node:worker_threads';
import { AudioResolver } from '../corpus/audio-resolver.js';
import type { TextTokenizer } from '../tokenize/text-tokenizer.js';
import type { ShardMeta } from './format.js';
import { buildShard, type ShardJob } from './shard-builder.js';

/**
 * Under vitest or tsx the sources are TypeScript. Node 20 does not apply `--import tsx` given in a
 * worker's execArgv, so the worker registers tsx's loader itself before importing its module.
 */
function spawnWorker(workerData: { corpus: string; tokenizer: string }): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./index-worker.js', import.meta.url), { workerData });
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const main = JSON.stringify(new URL('./index-worker.ts', import.meta.url).href);
  return new Worker(`import(${api}).then((tsx) => { tsx.register(); return import(${main}); });`, { eval: true, workerData });
}

/**
 * Builds shards on N worker threads (or in-process for N = 1), each worker owning its own
 * tokenizer. Results arrive in completion order; the caller orders them.
 */
export async function buildShards(
  jobs: readonly ShardJob[],
  workers: number,
  tok: TextTokenizer,
  onDone: (meta: ShardMeta) => void,
): Promise<ShardMeta[]> {
  const first = jobs[0];
  if (!first) return [];
  if (workers <= 1) {
    const audio = new AudioResolver(first.corpus);
    const out: ShardMeta[] = [];
    for (const job of jobs) {
      const meta = await buildShard(job, tok, audio);
      onDone(meta);
      out.push(meta);
    }
    return out;
  }
  const workerData = { corpus: first.corpus, tokenizer: first.options.tokenizer };
  const pool = Array.from({ length: Math.min(workers, jobs.length) }, () => spawnWorker(workerData));
  const out: ShardMeta[] = [];
  let next = 0;
  try {
    await Promise.all(
      pool.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const feed = (): void => {
              const job = jobs[next++];
              if (job) w.postMessage(job);
              else resolve();
            };
            w.on('message', (msg: { ok: true; meta: ShardMeta } | { ok: false; error: string }) => {
              if (!msg.ok) {
                reject(new Error(msg.error));
                return;
              }
              onDone(msg.meta);
              out.push(msg.meta);
              feed();
            });
            w.on('error', reject);
            feed();
          }),
      ),
    );
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return out;
}
