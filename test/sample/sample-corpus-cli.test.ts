import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../../src/index/build-index.js';
import { CLI } from '../helpers/cli.js';

/**
 * `flanstream sample-corpus` prints the exact `index` command that its corpus needs: the sample's
 * .scp files hold absolute paths (as the release's do), so without `--audio-root` every record
 * with audio would be quarantined.
 */
describe('sample-corpus prints the next command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flanstream-sample-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('and that command indexes the corpus with nothing quarantined (without its --audio-root, records are)', async () => {
    const corpus = join(dir, 'corpus');
    const r = spawnSync(process.execPath, [CLI, 'sample-corpus', corpus, '--records', '300'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('next: '));
    expect(line).toBeDefined();
    const words = line!.slice('next: '.length).split(' ');
    expect(words.slice(0, 4)).toEqual(['npx', 'flanstream', 'index', corpus]);
    const flag = (name: string): string[] => words.flatMap((w, i) => (w === name ? [words[i + 1]!] : []));
    const [out] = flag('--out');
    const audioRoots = flag('--audio-root');
    expect(audioRoots.length).toBe(1);

    const quarantined = async (roots: string[], to: string): Promise<number> => {
      return (await buildIndex({ corpus, out: to, workers: 1, audioRoots: roots })).manifest.quarantined;
    };
    expect(await quarantined([], join(dir, 'no-root'))).toBeGreaterThan(0);
    expect(await quarantined(audioRoots, out!)).toBe(0);
  });
});
