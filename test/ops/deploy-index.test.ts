import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { keepDatasets } from '../helpers/fault-injection.js';
import { indexTree as tree } from '../helpers/index-tree.js';
import { ensureDist, ROOT } from './helpers/dist.js';

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const run = promisify(execFile);
const K8S = join(ROOT, 'config', 'deploy', 'kubernetes');
const SBATCH = join(ROOT, 'config', 'deploy', 'slurm', 'index.sbatch');
const jobs = (file: string): Doc[] => parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((d) => d.toJS() as Doc).filter((d) => d.kind === 'Job');

const base = mkdtempSync(join(tmpdir(), 'flanstream-deploy-index-'));
const corpus = join(base, 'corpus');
const single = join(base, 'single');
afterAll(() => rmSync(base, { recursive: true, force: true }));
beforeAll(async () => {
  await writeSampleCorpus(corpus, { records: 300, seed: 11 });
  keepDatasets(corpus, ['07_ESD', '01_CommonVoice', '02_Emilia', '20_MTG-Jamendo', '39_AudioSet']);
  await buildIndex({ corpus, out: single, workers: 1 });
});


/** Runs `fns` at most `n` at a time. */
async function limited(fns: (() => Promise<unknown>)[], n: number): Promise<void> {
  const queue = [...fns];
  await Promise.all(Array.from({ length: n }, async () => {
    for (let f = queue.shift(); f; f = queue.shift()) await f();
  }));
}

/**
 * What the kubelet runs for a Job's container: its env (the completion index as the Job
 * controller sets it, literal values), `$(VAR)` in args expanded from that env, volume mounts
 * mapped onto local directories, in the image's WORKDIR (the repository root here).
 */
async function runContainer(job: Doc, index: number, mounts: Record<string, string>): Promise<void> {
  const pod = job.spec.template.spec;
  const c = pod.containers[0];
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.annotations['batch.kubernetes.io/job-completion-index']") env[e.name] = String(index);
    else throw new Error(`unsupported env source for ${e.name}`);
  }
  const byVolume = new Map<string, string>(c.volumeMounts.map((m: Doc) => [m.name, m.mountPath]));
  const claims = pod.volumes.map((v: Doc) => [byVolume.get(v.name), v.persistentVolumeClaim.claimName]);
  const local = (arg: string): string => {
    for (const [mountPath, claim] of claims) if (arg === mountPath || arg.startsWith(`${mountPath}/`)) return mounts[claim] + arg.slice(mountPath.length);
    return arg;
  };
  const args = (c.args as string[]).map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string) => env[name] ?? m)).map(local);
  const [cmd, ...cmdArgs] = c.command as string[];
  expect(cmd).toBe('node');
  await run(process.execPath, [...cmdArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
}

describe('Kubernetes: Indexed Job of parts, then the merge Job', () => {
  it('run as the cluster would (every index, out of order), they produce the one-process index', async () => {
    await ensureDist();
    const [parts] = jobs('index-job.yaml');
    const [merge] = jobs('index-merge-job.yaml');
    expect(parts!.spec.completionMode).toBe('Indexed');
    const n = parts!.spec.completions as number;
    const out = join(base, 'k8s-volume');
    mkdirSync(out);
    const mounts = { 'flanstream-corpus': corpus, 'flanstream-index-build': out };
    const order = Array.from({ length: n }, (_, i) => (i * 5 + 3) % n);
    expect(new Set(order).size).toBe(n);
    await limited(order.map((i) => () => runContainer(parts!, i, mounts)), 4);
    await runContainer(merge!, 0, mounts);
    const outArg = (job: Doc): string => job.spec.template.spec.containers[0].args[job.spec.template.spec.containers[0].args.indexOf('--out') + 1];
    expect(outArg(merge!)).toBe(outArg(parts!));
    expect(tree(join(out, outArg(parts!).slice('/index/'.length)))).toEqual(tree(single));
  });
});

describe('Slurm: array job of parts with a dependent merge job', () => {
  it('submits the array and an afterok merge; each task run as Slurm would builds its part; the merge gives the one-process index', async () => {
    // A fake `sbatch` that records its arguments and answers like `sbatch --parsable`.
    const bin = join(base, 'bin');
    mkdirSync(bin);
    const log = join(base, 'sbatch.log');
    writeFileSync(join(bin, 'sbatch'), `#!/usr/bin/env bash\nn=$(( $(wc -l < "${log}" 2>/dev/null || echo 0) + 1 ))\nprintf '%s\\0' "$@" >> "${log}.$n"\necho "$n" >> "${log}"\necho "$(( 7000 + n ));cluster0"\n`);
    chmodSync(join(bin, 'sbatch'), 0o755);
    const out = join(base, 'slurm-index');
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, CORPUS: corpus, INDEX_OUT: out, PARTS: '3', FLANSTREAM: `${process.execPath} --import tsx src/cli.ts` };
    const submitted = await run('bash', [SBATCH], { cwd: ROOT, env });
    expect(submitted.stdout).toMatch(/parts as array job 7001 \(tasks 0-2\), merge as job 7002/);
    const call = (k: number): string[] => readFileSync(`${log}.${k}`, 'utf8').split('\0').slice(0, -1);
    const [arrayCall, mergeCall] = [call(1), call(2)];
    expect(arrayCall.at(-1)).toBe(SBATCH);
    expect(mergeCall.at(-1)).toBe(SBATCH);
    expect(mergeCall).toContain('--dependency=afterok:7001');

    // Slurm runs the array's tasks (here out of order) with the array variables it sets.
    const array = /^--array=(\d+)-(\d+)$/.exec(arrayCall.find((a) => a.startsWith('--array='))!)!;
    const [min, max] = [Number(array[1]), Number(array[2])];
    const ids = Array.from({ length: max - min + 1 }, (_, k) => min + k).reverse();
    for (const id of ids) {
      await run('bash', [SBATCH], { cwd: ROOT, env: { ...env, SLURM_JOB_ID: '7001', SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: String(min), SLURM_ARRAY_TASK_COUNT: String(ids.length), SLURM_CPUS_PER_TASK: '2' } });
    }
    // Then the merge job, with the environment its --export asked for.
    const exported = mergeCall.find((a) => a.startsWith('--export='))!.slice('--export='.length).split(',');
    expect(exported[0]).toBe('ALL');
    const extra = Object.fromEntries(exported.slice(1).map((kv) => kv.split('=') as [string, string]));
    await run('bash', [SBATCH], { cwd: ROOT, env: { ...env, SLURM_JOB_ID: '7002', ...extra } });
    expect(tree(out)).toEqual(tree(single));
  });

  it('refuses a PARTS that is not a positive integer', async () => {
    await expect(run('bash', [SBATCH], { cwd: ROOT, env: { ...process.env, CORPUS: corpus, INDEX_OUT: join(base, 'x'), PARTS: '0' } })).rejects.toThrow(/PARTS must be a positive integer, got '0'/);
  });
});
