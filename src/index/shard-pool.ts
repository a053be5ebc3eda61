import type { CorpusFiles } from '../corpus/corpus-files.js';
import type { TextTokenizer } from '../tokenize/text-tokenizer.js';
import type { ShardMeta } from './format.js';
import { revive, type CarriedError } from '../errors.js';
import { spawnWorker } from '../util/spawn-worker.js';
import { buildShard, type ShardJob } from './shard-builder.js';
import { shardTools } from './shard-tools.js';
import type { BuildLimits } from './build-limits.js';

/**
 * Jobs grouped by dataset (`metadata/<domain>/<ug>/<split>/<dataset>/…`), in order. Shards of one
 * dataset share clips, so whoever builds a dataset's shards back to back finds the clips in its
 * resolver's cache instead of reading and parsing them again.
 */
function byDataset(jobs: readonly ShardJob[]): ShardJob[][] {
  const groups = new Map<string, ShardJob[]>();
  for (const job of jobs) {
    const dataset = job.source.split('/')[4] ?? '';
    let g = groups.get(dataset);
    if (!g) groups.set(dataset, (g = []));
    g.push(job);
  }
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
}

/**
 * Builds shards on N worker threads (or in-process for N = 1, reading through `files`), each
 * worker owning its own tokenizer, audio cache and corpus reader. A worker keeps to one dataset's shards and moves to the next dataset
 * nobody started; when none is left it takes from the dataset with most shards remaining.
 * Results arrive in completion order; the caller orders them.
 */
export async function buildShards(
  jobs: readonly ShardJob[],
  workers: number,
  tok: TextTokenizer,
  files: CorpusFiles,
  onDone: (meta: ShardMeta) => void,
  limits: BuildLimits = {},
): Promise<ShardMeta[]> {
  const first = jobs[0];
  if (!first) return [];
  const groups = byDataset(jobs);
  if (workers <= 1) {
    const tools = shardTools(tok, files, first.options.audioRoots, limits);
    const out: ShardMeta[] = [];
    for (const job of groups.flat()) {
      const meta = await buildShard(job, tools);
      onDone(meta);
      out.push(meta);
    }
    return out;
  }
  // Each worker opens the corpus itself (its own S3 client, for an s3:// corpus).
  const workerData = {
    corpus: files.where,
    tokenizer: first.options.tokenizer,
    audioRoots: first.options.audioRoots,
    limits,
  };
  const pool = Array.from({ length: Math.min(workers, jobs.length) }, () =>
    spawnWorker(import.meta.url, 'index-worker', { workerData }),
  );
  const out: ShardMeta[] = [];
  let started = 0;
  const take = (current: ShardJob[] | undefined): ShardJob[] | undefined => {
    if (current && current.length > 0) return current;
    if (started < groups.length) return groups[started++];
    return groups.reduce<ShardJob[] | undefined>((best, g) => (g.length > (best?.length ?? 0) ? g : best), undefined);
  };
  try {
    await Promise.all(
      pool.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            let group: ShardJob[] | undefined;
            const feed = (): void => {
              group = take(group);
              const job = group?.shift();
              if (job) w.postMessage(job);
              else resolve();
            };
            w.on('message', (msg: { ok: true; meta: ShardMeta } | { ok: false; error: CarriedError }) => {
              if (!msg.ok) {
                reject(revive(msg.error));
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
