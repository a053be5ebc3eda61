#!/usr/bin/env node
// `npm test`: the static checks (typecheck, eslint, prettier, layer imports) two at a time, then
// vitest and the Python client's pytest side by side. Both test suites spend much of their time
// waiting on child servers, so running them together keeps the two cores busy. Output of the
// checks and of pytest is printed whole when each ends; vitest prints as it goes. Exits non-zero
// when anything failed, after everything has run.
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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
const checks = await pool(
  [
    () => run('eslint', bin('eslint'), ['.'], true),
    () => run('typecheck', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit'], true),
    () => run('prettier --check', bin('prettier'), ['--check', '.', '--log-level', 'warn'], true),
    () => run('layer imports', node, ['--import', 'tsx', 'test/architecture/check-imports.ts'], true),
  ],
  2,
);
const tests = await pool(
  [() => run('vitest', bin('vitest'), ['run'], false), () => run('pytest', node, ['scripts/pytest.mjs'], true)],
  2,
);
process.exit(checks && tests ? 0 : 1);
