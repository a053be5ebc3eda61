// `npm run bench [-- <name>…]`: runs the benchmarks under test/bench/ (all by default) and prints
// their markdown tables. Names: index, sampler, packing, stream, decode, scale, replicas, closedloop, decontam, layouts, s3, idle, build, workers, merge, rarefit, shuffle, buildmem, opendelay, filter.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const BENCHES = {
  index: 'test/bench/index-bench.ts',
  sampler: 'test/bench/sampler-bench.ts',
  packing: 'test/bench/packing-bench.ts',
  stream: 'test/bench/stream-bench.ts',
  decode: 'test/bench/stream-decode-bench.ts',
  scale: 'test/bench/scale-bench.ts',
  replicas: 'test/bench/replicas-bench.ts',
  layouts: 'test/bench/layout-bench.ts',
  closedloop: 'test/bench/closed-loop-bench.ts',
  decontam: 'test/bench/decontam-bench.ts',
  s3: 'test/bench/s3-bench.ts',
  idle: 'test/bench/idle-streams-bench.ts',
  build: 'test/bench/build-bench.ts',
  workers: 'test/bench/workers-bench.ts',
  merge: 'test/bench/merge-bench.ts',
  rarefit: 'test/bench/rare-fit-bench.ts',
  shuffle: 'test/bench/shuffle-bench.ts',
  buildmem: 'test/bench/build-memory-bench.ts',
  opendelay: 'test/bench/open-delay-bench.ts',
  filter: 'test/bench/filter-bench.ts',
};
const args = process.argv.slice(2);
const names = args.filter((a) => !a.startsWith('-'));
const extra = args.filter((a) => a.startsWith('-'));
const chosen = names.length > 0 ? names : Object.keys(BENCHES);
for (const name of chosen) {
  const file = BENCHES[name];
  if (!file) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
  if (!existsSync(join(root, file))) {
    console.error(`benchmark ${name}: ${file} is missing`);
    process.exit(2);
  }
  console.log(`\n## ${name}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, file), ...extra], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
