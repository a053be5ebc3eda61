#!/usr/bin/env node
// `npm test`: the static checks (typecheck and eslint over one TypeScript program, prettier, layer
// imports) two at a time, then vitest; the Python client's pytest runs beside both. Output of the
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
// pytest spends most of its time waiting on its servers and trainers: it starts at once, beside
// the checks; vitest, which keeps both cores busy, starts when the checks are done.
const pytest = run('pytest', node, ['scripts/pytest.mjs'], true);
const checks = await pool(
  [
    () => run('typecheck + eslint', node, ['scripts/typecheck-lint.mjs'], true),
    () => run('prettier --check', bin('prettier'), ['--check', '.', '--log-level', 'warn'], true),
    () => run('layer imports', node, ['--import', 'tsx', 'test/architecture/check-imports.ts'], true),
  ],
  2,
);
const vitest = await run('vitest', bin('vitest'), ['run'], false);
process.exit(checks && vitest && (await pytest) ? 0 : 1);
