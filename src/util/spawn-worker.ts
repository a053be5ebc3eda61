import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread from the module `<name>.js` next to `base` (an import.meta.url). Under
 * vitest or tsx the sources are TypeScript, and Node 20 does not apply `--import tsx` given in a
 * worker's execArgv, so the worker registers tsx's loader itself before importing its `.ts` module.
 */
export function spawnWorker(base: string, name: string, opts: WorkerOptions): Worker {
  if (!base.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, base), opts);
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const main = JSON.stringify(new URL(`./${name}.ts`, base).href);
  return new Worker(`import(${api}).then((tsx) => { tsx.register(); return import(${main}); });`, {
    ...opts,
    eval: true,
  });
}
