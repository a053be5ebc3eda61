import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../../src/index/build-index.js';
import { readManifest } from '../../src/index/manifest-io.js';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { indexTree } from '../helpers/index-tree.js';
import { startSlurmCluster, type SlurmCluster } from '../helpers/slurm-cluster.js';
import { CLI, ensureDist, ROOT } from './helpers/dist.js';

const run = promisify(execFile);
const SBATCH = join(ROOT, 'config', 'deploy', 'slurm', 'index.sbatch');
const PARTS = 3;

/**
 * config/deploy/slurm/index.sbatch on a real single-node Slurm cluster (slurmctld + slurmd +
 * munged, started here), as docs/deployment.md tells an operator to run it: the array of parts
 * with resources and index flags from the environment, one task failing, that task resubmitted
 * alone while another part is still running, and the merge waiting for all of them. The merged
 * index must equal the one-process build, file for file.
 */
describe('Slurm: the index array job and its merge on a real cluster', () => {
  const base = mkdtempSync(join(tmpdir(), 'flanstream-slurm-'));
  const corpus = join(base, 'corpus');
  const single = join(base, 'single');
  const out = join(base, 'index');
  const work = join(base, 'submit');
  const failOnce = join(base, 'fail-task-1');
  const gate = join(base, 'hold-task-2');
  let cluster: SlurmCluster | undefined;

  beforeAll(async () => {
    await ensureDist();
    await writeSampleCorpus(corpus, { records: 300, seed: 11 });
    await buildIndex({ corpus, out: single, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
    cluster = await startSlurmCluster(join(base, 'slurm'), { cpus: 4, memoryMb: 4000 });
  }, 180_000);
  afterAll(async () => {
    if (cluster) {
      await run('scancel', ['--user=root'], { env: cluster.env }).catch(() => undefined);
      await cluster.stop();
    }
    rmSync(base, { recursive: true, force: true });
  });

  it('a failed task resubmitted alone builds its own part, and the merge waits for every part', async () => {
    const c = cluster!;
    mkdirSync(work);
    // The flanstream command the jobs run: the real CLI, except that task 1 fails once (its node
    // lost) and task 2 holds while the gate file exists (a slow part).
    const wrapper = join(base, 'flanstream');
    writeFileSync(
      wrapper,
      [
        '#!/usr/bin/env bash',
        `if [[ "\${SLURM_ARRAY_TASK_ID:-}" == 1 && -e ${failOnce} ]]; then rm -f ${failOnce}; echo "task 1: node lost" >&2; exit 1; fi`,
        `while [[ "\${SLURM_ARRAY_TASK_ID:-}" == 2 && -e ${gate} ]]; do sleep 0.2; done`,
        `exec ${process.execPath} ${CLI} "$@"`,
        '',
      ].join('\n'),
    );
    chmodSync(wrapper, 0o755);
    writeFileSync(failOnce, '');
    writeFileSync(gate, '');
    const env = {
      ...c.env,
      CORPUS: corpus,
      INDEX_OUT: out,
      PARTS: String(PARTS),
      FLANSTREAM: wrapper,
      INDEX_FLAGS: `--audio-root ${SAMPLE_AUDIO_ROOT}`,
      CPUS_PER_TASK: '1',
      MEM_PER_TASK: '600M',
      TIME_LIMIT: '00:10:00',
    };
    const submit = async (extra: Record<string, string> = {}): Promise<{ array: string; merge: string }> => {
      const { stdout } = await run('bash', [SBATCH], { cwd: work, env: { ...env, ...extra } });
      const m = /parts as array job (\d+) .*merge as job (\d+)/.exec(stdout);
      if (!m) throw new Error(`unexpected submission output: ${stdout}`);
      return { array: m[1]!, merge: m[2]! };
    };
    const state = (js: Record<string, string>[], task: string): string | undefined =>
      js.find((j) => j.ArrayTaskId === task)?.JobState;

    const first = await submit();
    // Resources came from the environment, not from the script.
    const tasks = await c.jobs(first.array);
    expect(tasks.length).toBeGreaterThan(0);
    for (const t of tasks) {
      expect(t.NumCPUs).toBe('1');
      expect(t.MinMemoryNode).toBe('600M');
      expect(t.TimeLimit).toBe('00:10:00');
    }
    // Task 1 fails, task 0 succeeds, task 2 is still running behind its gate; the first merge
    // waits for the whole array (afterok), which can no longer succeed.
    await c.waitFor(
      first.array,
      (js) => state(js, '1') === 'FAILED' && state(js, '0') === 'COMPLETED' && state(js, '2') === 'RUNNING',
    );
    expect((await c.jobs(first.merge))[0]!.JobState).toBe('PENDING');

    // The resubmission of task 1 alone builds part 1/3 (not 0/1), and its merge waits for task 2.
    const again = await submit({ TASKS: '1' });
    await c.waitFor(again.array, (js) => js.length === 1 && js[0]!.JobState === 'COMPLETED');
    expect(existsSync(join(out, 'parts', 'part-0001-of-0003.msgpack'))).toBe(true);
    const waiting = await c.jobs(again.merge);
    expect(waiting[0]!.JobState).toBe('PENDING');
    expect(waiting[0]!.Reason).toBe('Dependency');
    expect(existsSync(join(out, 'manifest.msgpack'))).toBe(false);

    rmSync(gate);
    await c.waitFor(first.array, (js) => state(js, '2') === 'COMPLETED');
    const merged = await c.waitFor(again.merge, (js) =>
      ['COMPLETED', 'FAILED', 'CANCELLED'].includes(js[0]!.JobState!),
    );
    expect(merged[0]!.JobState, c.logs()).toBe('COMPLETED');
    // The first merge never ran: one of its tasks failed, and Slurm cancelled it.
    expect((await c.jobs(first.merge))[0]!.JobState).toBe('CANCELLED');

    // The index equals the one-process build (same fingerprint, same bytes), nothing quarantined
    // for want of --audio-root, and the parts' records are gone.
    const m = readManifest(out);
    expect(m.fingerprint).toBe(readManifest(single).fingerprint);
    expect(m.quarantined).toBe(0);
    expect(indexTree(out)).toEqual(indexTree(single));
    expect(readdirSync(work).sort()).toEqual(
      [
        `flanstream-index-${again.array}_1.out`,
        `flanstream-index-${first.array}_0.out`,
        `flanstream-index-${first.array}_1.out`,
        `flanstream-index-${first.array}_2.out`,
        `flanstream-index-merge-${again.merge}.out`,
      ].sort(),
    );
  }, 240_000);

  it('refuses a bad PARTS or TASKS before submitting anything', async () => {
    const env = { ...process.env, CORPUS: corpus, INDEX_OUT: join(base, 'x'), PATH: '/nonexistent' };
    await expect(run('/bin/bash', [SBATCH], { env: { ...env, PARTS: '0' } })).rejects.toThrow(
      /PARTS must be a positive integer, got '0'/,
    );
    await expect(run('/bin/bash', [SBATCH], { env: { ...env, PARTS: '4', TASKS: '2,4' } })).rejects.toThrow(
      /TASKS names task 4, but PARTS=4 has tasks 0-3/,
    );
    await expect(run('/bin/bash', [SBATCH], { env: { ...env, PARTS: '4', TASKS: 'all' } })).rejects.toThrow(
      /TASKS must be an sbatch --array list/,
    );
    // A task id outside PARTS (an array submitted by hand with another range) is refused by the task.
    await expect(run('/bin/bash', [SBATCH], { env: { ...env, PARTS: '4', SLURM_ARRAY_TASK_ID: '4' } })).rejects.toThrow(
      /array task 4 is not a part of PARTS=4/,
    );
  });
});
