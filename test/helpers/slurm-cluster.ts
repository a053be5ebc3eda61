// A real single-node Slurm cluster for tests: munged with a fresh key, slurmctld and slurmd on
// loopback ports, all state, spool, logs and the slurm.conf in one temporary directory. Clients
// (sbatch, scontrol, squeue) reach it through SLURM_CONF in `env`. The daemons are Debian's
// (`slurm-wlm`, `munge`) and run in the foreground as children of the test, as root.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SlurmCluster {
  /** The environment clients need (SLURM_CONF) on top of process.env. */
  readonly env: NodeJS.ProcessEnv;
  /** Every record of a job (an array job has one per task): JobId, ArrayTaskId, JobState, Reason, … */
  jobs(id: string): Promise<Record<string, string>[]>;
  /** Waits until `done` holds for the job's records (polling scontrol), or throws with them. */
  waitFor(
    id: string,
    done: (jobs: Record<string, string>[]) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, string>[]>;
  /** The daemons' logs, for a failure message. */
  logs(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** `scontrol show job -o` lines as key=value records (values never contain spaces here). */
function parseJobs(stdout: string): Record<string, string>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('JobId='))
    .map((l) =>
      Object.fromEntries(
        l
          .split(' ')
          .filter((kv) => kv.includes('='))
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      ),
    );
}

/**
 * Starts the cluster with `cpus` CPU slots and `memoryMb` of memory on its one node (slurmd
 * reports the configured values, config_overrides, so the test's scheduling does not depend on
 * the machine's cores).
 */
export async function startSlurmCluster(dir: string, opts: { cpus: number; memoryMb: number }): Promise<SlurmCluster> {
  for (const d of ['munge', 'state', 'spool', 'log']) mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
  const key = join(dir, 'munge', 'munge.key');
  writeFileSync(key, randomBytes(1024), { mode: 0o400 });
  chmodSync(join(dir, 'munge'), 0o711); // munged wants its socket directory searchable
  const socket = join(dir, 'munge', 'munge.sock');
  const node = hostname().split('.')[0]!;
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const conf = join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=flanstream-test',
      `SlurmctldHost=${node}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      'AuthType=auth/munge',
      `AuthInfo=socket=${socket}`,
      'CredType=cred/munge',
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'log', 'slurmd.log')}`,
      'SlurmdParameters=config_overrides',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/none',
      'MpiDefault=none',
      'SwitchType=switch/none',
      'SchedulerType=sched/builtin',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU_Memory',
      'DefMemPerCPU=100',
      'ReturnToService=2',
      'MinJobAge=3600',
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${opts.cpus} RealMemory=${opts.memoryMb} State=UNKNOWN`,
      `PartitionName=test Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  const env: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF: conf };
  const daemons: ChildProcess[] = [];
  const start = (cmd: string, args: string[]): void => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'ignore'] });
    child.on('error', () => {}); // reported below as a cluster that never comes up
    daemons.push(child);
  };
  const logs = (): string =>
    ['slurmctld.log', 'slurmd.log']
      .map((f) => join(dir, 'log', f))
      .filter((f) => existsSync(f))
      .map((f) => `== ${f}\n${readFileSync(f, 'utf8').split('\n').slice(-30).join('\n')}`)
      .join('\n');
  const stop = async (): Promise<void> => {
    for (const d of daemons.reverse()) {
      if (d.exitCode !== null || d.signalCode !== null) continue;
      const exited = new Promise<void>((resolve) => d.once('exit', () => resolve()));
      d.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
    }
  };
  const until = async (what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
    const t0 = Date.now();
    while (!(await ok().catch(() => false))) {
      if (Date.now() - t0 > timeoutMs) {
        await stop();
        throw new Error(`Slurm test cluster: ${what} within ${timeoutMs} ms\n${logs()}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  start('munged', [
    '-F',
    '--force',
    `--key-file=${key}`,
    `--socket=${socket}`,
    `--pid-file=${join(dir, 'munge', 'munged.pid')}`,
    `--log-file=${join(dir, 'log', 'munged.log')}`,
    `--seed-file=${join(dir, 'munge', 'seed')}`,
  ]);
  await until(
    'munged did not answer',
    async () => (await run('munge', ['-S', socket, '-n'], { env })).stdout.length > 0,
    20_000,
  );
  start('slurmctld', ['-D', '-i', '-f', conf]);
  start('slurmd', ['-D', '-N', node, '-f', conf]);
  await until(
    'the node did not become idle',
    async () => /idle/.test((await run('sinfo', ['-h', '-o', '%T'], { env })).stdout),
    60_000,
  );

  const jobs = async (id: string): Promise<Record<string, string>[]> =>
    parseJobs((await run('scontrol', ['show', 'job', '-o', id], { env })).stdout);
  return {
    env,
    jobs,
    async waitFor(id, done, timeoutMs = 120_000) {
      const t0 = Date.now();
      for (;;) {
        const js = await jobs(id);
        if (js.length && done(js)) return js;
        if (Date.now() - t0 > timeoutMs)
          throw new Error(
            `job ${id} not done within ${timeoutMs} ms: ${JSON.stringify(js.map((j) => [j.JobId, j.ArrayTaskId, j.JobState, j.Reason]))}\n${logs()}`,
          );
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    logs,
    stop,
  };
}
