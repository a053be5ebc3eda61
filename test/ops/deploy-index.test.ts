import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
