import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { indexIsCurrent } from '../../src/index/manifest-io.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** A numeric flag as `--name value` or `--name=value` (the form `npm run bench -- …` passes through). */
export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return Number(process.argv[i + 1]);
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? Number(eq.slice(name.length + 3)) : fallback;
}

export function stats(xs: readonly number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
  return { median, min: s[0] ?? 0, max: s[s.length - 1] ?? 0 };
}

export const fmtM = (x: number): string => `${(x / 1e6).toFixed(2)}M`;

/** A number with thousands separators and exactly `digits` decimals. */
export const fmt = (x: number, digits = 0): string =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A sample corpus of `records` and its index under .cache/bench, built once (again after a format change) and reused. */
export function benchIndex(records: number): string {
  const dir = join(ROOT, '.cache', 'bench', `sample-${records}`);
  const cli = join(ROOT, 'dist', 'cli.js');
  mkdirSync(dir, { recursive: true });
  const run = (args: string[]): void => {
    const r = spawnSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`flanstream ${args.join(' ')} failed`);
  };
  // A corpus written before sample corpora shipped codec.json is of an older shape: write it again.
  if (existsSync(join(dir, 'corpus', 'metadata')) && !existsSync(join(dir, 'corpus', 'audio_tokens', 'codec.json')))
    for (const d of ['corpus', 'index']) rmSync(join(dir, d), { recursive: true, force: true });
  if (!existsSync(join(dir, 'corpus', 'metadata')))
    run(['sample-corpus', join(dir, 'corpus'), '--records', String(records), '--seed', '0']);
  if (!indexIsCurrent(join(dir, 'index')))
    run(['index', join(dir, 'corpus'), '--out', join(dir, 'index'), '--audio-root', SAMPLE_AUDIO_ROOT]);
  return join(dir, 'index');
}

/** Starts a child that prints one JSON line when ready; resolves with it. */
export async function startChild(
  cmd: string,
  args: string[],
): Promise<{ child: ChildProcess; info: Record<string, number> }> {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return { child, info: JSON.parse(line) as Record<string, number> };
}

/** `flanstream serve` from dist/ on `index`, on an ephemeral port, without its HTTP port. */
export function startServerChild(index: string): Promise<{ child: ChildProcess; info: Record<string, number> }> {
  return startChild(process.execPath, [
    join(ROOT, 'dist', 'cli.js'),
    'serve',
    '--index',
    index,
    '--port',
    '0',
    '--http-port=-1',
  ]);
}

export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** A string flag as `--name value` or `--name=value`; undefined when absent. */
export function textArg(name: string): string | undefined {
  const i = process.argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  return process.argv[i]!.includes('=') ? process.argv[i]!.slice(name.length + 3) : process.argv[i + 1];
}
