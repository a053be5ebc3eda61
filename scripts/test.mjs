#!/usr/bin/env node
// `npm test`: the static checks (typecheck and eslint over one TypeScript program, prettier, layer
// imports) two at a time, then vitest; the Python client's pytest runs beside both. Both suites
// serve the same sample corpus and index, built here once (FLANSTREAM_TEST_SAMPLE names its
// folder). Output of the checks and of pytest is printed whole when each ends; vitest prints as it
// goes. Exits non-zero when anything failed, after everything has run.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => resolve(root, 'node_modules', '.bin', name);

/** Runs one command; `buffer` collects its output and prints it in one piece when it ends. */
function run(label, cmd, args, buffer) {
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: root, stdio: buffer ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    const out = [];
    if (buffer) {
      child.stdout.on('data', (d) => out.push(d));
      child.stderr.on('data', (d) => out.push(d));
    }
    child.on('error', (e) => out.push(Buffer.from(`${e.message}\n`)));
    child.on('close', (code, signal) => {
      const ok = code === 0;
      if (buffer) process.stdout.write(Buffer.concat(out));
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      console.log(`${ok ? 'ok' : 'FAILED'}: ${label} (${secs} s${ok ? '' : `, ${signal ?? `exit ${code}`}`})`);
      done(ok);
    });
  });
}

/** Runs `jobs` at most `limit` at a time; resolves to whether all succeeded. */
async function pool(jobs, limit) {
  const results = [];
  const queue = [...jobs];
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) results.push(await job());
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results.every(Boolean);
}

const node = process.execPath;
/**
 * The sample corpus both suites serve (3,000 records, seed 0) and its index, built by the CLI into
 * `dir`/corpus and `dir`/index; resolves to whether both were built.
 */
async function buildSample(dir) {
  const { SAMPLE_AUDIO_ROOT } = await import(pathToFileURL(join(root, 'dist', 'sample', 'sample-release-shape.js')));
  const [corpus, index] = [join(dir, 'corpus'), join(dir, 'index')];
  const cli = (label, ...args) => run(label, node, ['dist/cli.js', ...args], true);
  return (
    (await cli('sample corpus', 'sample-corpus', corpus, '--records', '3000', '--seed', '0')) &&
    (await cli('sample index', 'index', corpus, '--out', index, '--workers', '1', '--audio-root', SAMPLE_AUDIO_ROOT))
  );
}
const sample = mkdtempSync(join(tmpdir(), 'flanstream-sample-'));
// Without it (a failed build), each suite builds its own and reports what fails.
const sampleReady = buildSample(sample).then((ok) => {
  if (ok) process.env.FLANSTREAM_TEST_SAMPLE = sample;
});
// pytest spends most of its time waiting on its servers and trainers: it starts as soon as the
// sample is there, beside the checks; vitest, which keeps both cores busy, starts when the checks
// are done.
const pytest = sampleReady.then(() => run('pytest', node, ['scripts/pytest.mjs'], true));
const checks = await pool(
  [
    () => run('typecheck + eslint', node, ['scripts/typecheck-lint.mjs'], true),
    () => run('prettier --check', bin('prettier'), ['--check', '.', '--log-level', 'warn'], true),
    () => run('layer imports', node, ['--import', 'tsx', 'test/architecture/check-imports.ts'], true),
  ],
  2,
);
await sampleReady;
const vitest = await run('vitest', bin('vitest'), ['run'], false);
const ok = checks && vitest && (await pytest);
rmSync(sample, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
