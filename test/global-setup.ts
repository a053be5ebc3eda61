import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { writeSampleCorpus } from '../src/sample/sample-corpus.js';
import { buildIndex } from '../src/index/build-index.js';
import { SAMPLE_AUDIO_ROOT } from '../src/sample/sample-release-shape.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A 3,000-record sample corpus (seed 0) and its index, built once per test run (or by `npm test`). */
    sampleCorpus: string;
    sampleIndex: string;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  // Tests start the CLI from dist/ (helpers/cli.ts): build it when src/ is newer, as `npm test` does
  // (without type checking: tests check behaviour; `npm test` and `npm run typecheck` check types).
  execFileSync(process.execPath, [join(import.meta.dirname, '..', 'scripts', 'ensure-deps.mjs'), '--no-check'], {
    stdio: 'inherit',
  });
  // `npm test` builds the sample once for vitest and pytest (scripts/test.mjs) and removes it.
  const shared = process.env.FLANSTREAM_TEST_SAMPLE;
  const dir = shared || mkdtempSync(join(tmpdir(), 'flanstream-test-'));
  const corpus = join(dir, 'corpus');
  const index = join(dir, 'index');
  if (!shared) {
    await writeSampleCorpus(corpus, { records: 3000, seed: 0 });
    await buildIndex({ corpus, out: index, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
  }
  project.provide('sampleCorpus', corpus);
  project.provide('sampleIndex', index);
  return () => {
    if (!shared) rmSync(dir, { recursive: true, force: true });
  };
}
