#!/usr/bin/env node
// Runs the Python client's tests: `python3 -m pytest -q clients/python/tests` from the repo root,
// with clients/python on PYTHONPATH. Prefers Debian's /usr/bin/python3 (python3-grpcio,
// python3-protobuf, python3-numpy, python3-torch); falls back to `python3` on PATH
// (FLANSTREAM_PYTHON overrides both). Extra arguments go to pytest; when one of them names a
// test file or directory, it replaces the default test directory. Exits with pytest's code.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const python = process.env.FLANSTREAM_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const extra = process.argv.slice(2);
const namesTests = extra.some((a) => !a.startsWith('-') && existsSync(resolve(root, a.split('::')[0])));
const env = {
  ...process.env,
  PYTHONPATH: [join(root, 'clients', 'python'), process.env.PYTHONPATH].filter(Boolean).join(delimiter),
  PYTHONDONTWRITEBYTECODE: '1',
  // No request leaves the machine: the AWS SDK never falls back to the instance metadata service.
  AWS_EC2_METADATA_DISABLED: 'true',
};
const args = [
  '-m',
  'pytest',
  '-q',
  '-p',
  'no:cacheprovider',
  ...(namesTests ? [] : [join('clients', 'python', 'tests')]),
  ...extra,
];
const res = spawnSync(python, args, { cwd: root, env, stdio: 'inherit' });
if (res.error) {
  console.error(`scripts/pytest.mjs: cannot run ${python}: ${res.error.message}`);
  process.exit(1);
}
process.exit(res.status ?? 1);
