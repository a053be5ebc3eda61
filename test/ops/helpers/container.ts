import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * Docker and a kubelet cannot run here, so the deployment tests do what they would do with the
 * repository's own files: lay out the image's filesystem from the Dockerfile's COPY lines, and
 * run the command an image or a pod declares (ENTRYPOINT, CMD, args, env, mounts) as a process.
 */

export interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** A Dockerfile's stages, each its FROM line (`image AS name`) and its instructions. */
export function parseDockerfile(text: string): { from: string; name: string; steps: Instruction[] }[] {
  const stages: { from: string; name: string; steps: Instruction[] }[] = [];
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of logical) {
    const [, op = '', args = ''] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [from = '', , name = ''] = args.split(/\s+/);
      stages.push({ from, name, steps: [] });
    } else stages.at(-1)?.steps.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** The exec form (`["node", "x"]`) of an ENTRYPOINT, CMD or HEALTHCHECK CMD. */
export function execForm(args: string): string[] {
  const json = args.replace(/^.*?(?=\[)/, '');
  const v = JSON.parse(json) as unknown;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`not an exec-form array: ${args}`);
  return v;
}

/** The last value of an instruction in a stage (WORKDIR, ENTRYPOINT, CMD, …). */
export function last(steps: readonly Instruction[], op: string): string {
  const s = steps.filter((x) => x.op === op).at(-1);
  if (!s) throw new Error(`no ${op} instruction`);
  return s.args;
}

/**
 * The final stage's filesystem under `root`: every COPY of the build context comes from the
 * repository, every `COPY --from=<stage> <workdir>/x` from the repository's own build output
 * (the build stage copies the context to its WORKDIR and builds there). node_modules is linked,
 * the rest copied. Returns the image's WORKDIR inside `root`.
 */
export function layOutImage(repo: string, dockerfile: string, root: string): string {
  const stages = parseDockerfile(readFileSync(dockerfile, 'utf8'));
  const image = stages.at(-1)!;
  const workdir = last(image.steps, 'WORKDIR');
  for (const { op, args } of image.steps) {
    if (op !== 'COPY') continue;
    const words = args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
    const paths = words.filter((w) => !w.startsWith('--'));
    const dest = paths.pop()!;
    for (const src of paths) {
      let real = join(repo, src);
      if (from !== undefined) {
        const stage = stages.find((s) => s.name === from);
        if (!stage) throw new Error(`COPY --from=${from}: no such stage`);
        const buildDir = last(stage.steps, 'WORKDIR');
        if (!src.startsWith(`${buildDir}/`))
          throw new Error(`COPY --from=${from} ${src}: outside the build stage's WORKDIR ${buildDir}`);
        real = join(repo, src.slice(buildDir.length + 1));
      }
      if (!existsSync(real)) throw new Error(`COPY ${src}: ${real} does not exist`);
      const target = join(
        root,
        dest.startsWith('/') ? dest : join(workdir, dest),
        dest.endsWith('/') ? basename(src) : '',
      );
      mkdirSync(dirname(target), { recursive: true });
      if (basename(real) === 'node_modules') symlinkSync(real, target, 'dir');
      else cpSync(real, target, { recursive: true });
    }
  }
  return join(root, workdir);
}

/** Maps container paths to host paths: an argument equal to a mount point or under one is rewritten. */
export function mapPaths(argv: readonly string[], mounts: Readonly<Record<string, string>>): string[] {
  return argv.map((a) => {
    for (const [at, host] of Object.entries(mounts)) {
      if (a === at) return host;
      if (a.startsWith(`${at}/`)) return join(host, a.slice(at.length + 1));
    }
    return a;
  });
}

export interface Running {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly httpPort: number;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Runs a container's command (`node …`, with the test's Node) in `cwd` and waits for the
 * server's `{"event":"listening"}` line. Fails with its stderr if it exits first.
 */
export function runServer(
  argv: readonly string[],
  cwd: string,
  env: Readonly<Record<string, string>>,
): Promise<Running> {
  const [cmd, ...rest] = argv;
  if (cmd !== 'node') throw new Error(`expected a node command, got ${cmd}`);
  const proc = spawn(process.execPath, rest, {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${stderr}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const m = JSON.parse(line) as { event?: string; port: number; httpPort: number };
      if (m.event !== 'listening') return;
      resolve({
        proc,
        port: m.port,
        httpPort: m.httpPort,
        stop: () => {
          proc.kill('SIGTERM');
          return exited;
        },
      });
    });
  });
}
