import { Worker } from 'node:worker_threads';
import { AudioResolver } from '../corpus/audio-resolver.js';
import type { TextTokenizer } from '../tokenize/text-tokenizer.js';
import type { ShardMeta } from './format.js';
import { buildShard, type ShardJob } from './shard-builder.js';

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
  const url = new URL(import.meta.url.endsWith('.ts') ? './index-worker.ts' : './index-worker.js', import.meta.url);
  // Under vitest the sources are TypeScript; the worker then needs tsx's loader.
  const execArgv = import.meta.url.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const pool = Array.from({ length: Math.min(workers, jobs.length) }, () => new Worker(url, { workerData: { corpus: first.corpus, tokenizer: first.options.tokenizer }, execArgv }));
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
