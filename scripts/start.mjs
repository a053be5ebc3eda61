// `npm start`: on first run creates and indexes the bundled sample corpus under .cache/, then
// serves it on localhost:50051. Extra arguments go to `flanstream serve`.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { indexIsCurrent } from '../dist/index/manifest-io.js';
import { SAMPLE_AUDIO_ROOT } from '../dist/sample/sample-release-shape.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist', 'cli.js');
const corpus = join(root, '.cache', 'sample-corpus');
const index = join(root, '.cache', 'sample-index');
const step = (args) => {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
// A sample corpus from before codec.json (mixed codebook counts, list-only records) is rewritten.
if (existsSync(join(corpus, 'metadata')) && !existsSync(join(corpus, 'audio_tokens', 'codec.json')))
  for (const d of [corpus, index]) rmSync(d, { recursive: true, force: true });
if (!existsSync(join(corpus, 'metadata'))) {
  console.error('flanstream: writing the sample corpus (first run)…');
  step(['sample-corpus', corpus, '--records', '20000', '--seed', '0']);
}
if (!indexIsCurrent(index)) {
  console.error('flanstream: indexing the sample corpus (first run, or an index of an older format)…');
  // The sample corpus's absolute .scp paths are under a fixed fake prefix, as a release's would be.
  step(['index', corpus, '--out', index, '--audio-root', SAMPLE_AUDIO_ROOT]);
}
const server = spawn(
  process.execPath,
  [cli, 'serve', '--config', join(root, 'config', 'default.yaml'), '--index', index, ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' },
);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.kill(sig));
server.on('exit', (code) => process.exit(code ?? 0));
