// Installs npm dependencies when they are missing or older than the lockfile, and builds dist/
// when sources are newer: `npm start` and `npm test` work on a fresh clone. No dependencies.
// `--no-check` builds without type checking (tsc --noCheck, the same JavaScript in about half
// the time), for `npm test`, which typechecks src/ with the rest of its static checks.
import { execSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

const marker = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(marker) || mtime(marker) < mtime(join(root, 'package-lock.json'))) {
  // npm ci empties node_modules first: through a symlink that would wipe the packages of the
  // tree the link points at (a shared checkout), so a linked node_modules is never reinstalled.
  if (existsSync(join(root, 'node_modules')) && lstatSync(join(root, 'node_modules')).isSymbolicLink()) {
    console.error('flanstream: node_modules is a symlink and older than package-lock.json; run npm ci where it points');
    process.exit(1);
  }
  console.error('flanstream: installing npm dependencies (npm ci)…');
  run('npm ci --no-audit --no-fund');
}

function newest(dir) {
  let t = 0;
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    t = Math.max(t, ent.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}
if (!existsSync(join(root, 'dist', 'cli.js')) || newest(join(root, 'src')) > mtime(join(root, 'dist', 'cli.js')) - 1) {
  console.error('flanstream: building dist/ (tsc)…');
  run(process.argv.includes('--no-check') ? 'npm run build --silent -- --noCheck' : 'npm run build --silent');
}
