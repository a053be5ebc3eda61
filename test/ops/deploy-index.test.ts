import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { readManifest } from '../../src/index/manifest-io.js';
import { keepDatasets } from '../helpers/fault-injection.js';
import { indexTree as tree } from '../helpers/index-tree.js';
import { mapPaths } from './helpers/container.js';
import { ensureDist, ROOT } from './helpers/dist.js';
import { containerEnv, containersOf, expand, K8S, named, render, type Doc } from './helpers/kustomize.js';

const run = promisify(execFile);
const servers = render(K8S);
const build = render(join(K8S, 'index-build'));

const base = mkdtempSync(join(tmpdir(), 'flanstream-deploy-index-'));
const corpus = join(base, 'corpus');
const single = join(base, 'single');
afterAll(() => rmSync(base, { recursive: true, force: true }));
let audioRoot = '';
beforeAll(async () => {
  await writeSampleCorpus(corpus, { records: 300, seed: 11 });
  keepDatasets(corpus, ['07_ESD', '01_CommonVoice', '02_Emilia', '20_MTG-Jamendo', '39_AudioSet']);
  audioRoot = containerEnv(containersOf(named(build, 'Job', 'flanstream-index-merge'))[0]!.c, [
    ...servers,
    ...build,
  ]).AUDIO_ROOT!;
  await buildIndex({ corpus, out: single, workers: 1, audioRoots: [audioRoot] });
});

/** Runs `fns` at most `n` at a time. */
async function limited(fns: (() => Promise<unknown>)[], n: number): Promise<void> {
  const queue = [...fns];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let f = queue.shift(); f; f = queue.shift()) await f();
    }),
  );
}

/**
 * What the kubelet runs for a Job's container: its env (the completion index as the Job
 * controller sets it, ConfigMap keys), `$(VAR)` in args expanded, claims and emptyDirs mapped onto
 * local directories (an emptyDir at /tmp becomes TMPDIR), in the image's WORKDIR (the repository root here).
 */
async function runContainer(job: Doc, index: number, claims: Record<string, string>): Promise<string> {
  const [{ pod, c }] = containersOf(job) as [{ pod: Doc; c: Doc }];
  const env = containerEnv(c, [...servers, ...build], { completionIndex: index });
  const mounts: Record<string, string> = {};
  for (const m of c.volumeMounts as Doc[]) {
    const vol = (pod.volumes as Doc[]).find((v) => v.name === m.name)!;
    if (vol.persistentVolumeClaim) mounts[m.mountPath] = claims[vol.persistentVolumeClaim.claimName]!;
    else if (vol.emptyDir) mounts[m.mountPath] = mkdtempSync(join(base, `${m.name}-`));
  }
  const args = mapPaths(expand(c.args, env), mounts);
  // One index worker: this machine's two cores run two parts at once (the Job gives each part 4 CPUs).
  if (args.includes('--workers')) args[args.indexOf('--workers') + 1] = '1';
  const [cmd, ...cmdArgs] = c.command as string[];
  expect(cmd).toBe('node');
  const { stdout } = await run(process.execPath, [...cmdArgs, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env, TMPDIR: mounts['/tmp'] ?? tmpdir() },
  });
  return stdout;
}

describe('Kubernetes: the index-build Jobs (config/deploy/kubernetes/index-build)', () => {
  it('applied together, the merge waits for every part by itself and writes the one-process index', async () => {
    await ensureDist();
    const parts = named(build, 'Job', 'flanstream-index-parts');
    const merge = named(build, 'Job', 'flanstream-index-merge');
    expect(parts.spec.completionMode).toBe('Indexed');
    const n = parts.spec.completions as number;
    const volume = join(base, 'k8s-volume');
    mkdirSync(volume);
    const claims = { 'flanstream-corpus': corpus, 'flanstream-index': volume };
    // The merge starts first (both Jobs are created at once) and must wait for the parts.
    const merged = runContainer(merge, 0, claims);
    const order = Array.from({ length: n }, (_, i) => (i * 5 + 3) % n);
    expect(new Set(order).size).toBe(n);
    await limited(
      order.map((i) => () => runContainer(parts, i, claims)),
      2,
    );
    const stdout = await merged;
    expect(stdout).toMatch(/waiting for parts in .*: no part records yet/);
    const served = expand(
      containersOf(named(servers, 'Deployment', 'flanstream'))[0]!.c.args,
      containerEnv(containersOf(named(servers, 'Deployment', 'flanstream'))[0]!.c, servers),
    );
    const dir = mapPaths([served[served.indexOf('--index') + 1]!], { '/index': volume })[0]!;
    expect(readManifest(dir).quarantined).toBe(0);
    expect(tree(dir)).toEqual(tree(single));
  });
});
