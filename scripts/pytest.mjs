#!/usr/bin/env node
// Runs the Python client's tests: `python3 -m pytest -q clients/python/tests` from the repo root,
// with clients/python on PYTHONPATH. Prefers Debian's /usr/bin/python3 (python3-grpcio,
// python3-protobuf, python3-numpy, python3-torch); falls back to `python3` on PATH.
// Extra arguments are passed to pytest; the exit code is pytest's.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const python = process.env.FLANSTREAM_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const clientDir = join(root, 'clients', 'python');
const env = {
  ...process.env,
  PYTHONPATH: [clientDir, process.env.PYTHONPATH].filter(Boolean).join(delimiter),
  PYTHONDONTWRITEBYTECODE: '1',
};
const args = ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', join('clients', 'python', 'tests'), ...process.argv.slice(2)];
const res = spawnSync(python, args, { cwd: root, env, stdio: 'inherit' });
if (res.error) {
  console.error(`scripts/pytest.mjs: cannot run ${python}: ${res.error.message}`);
  process.exit(1);
}
process.exit(res.status ?? (res.signal ? 1 : 0));
