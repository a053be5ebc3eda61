import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = join(ROOT, 'dist', 'cli.js');

function newest(dir: string): number {
  let t = 0;
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (f.endsWith('.ts') || f.endsWith('.proto')) t = Math.max(t, statSync(join(dir, f)).mtimeMs);
  }
  return t;
}

function stale(): boolean {
  return !existsSync(CLI) || statSync(CLI).mtimeMs < Math.max(newest(join(ROOT, 'src')), newest(join(ROOT, 'proto')));
}

/**
 * Builds dist/ with `npm run build` when it is missing or older than src/ or proto/. Test files
 * run in parallel workers, so the build is serialized by a lock directory (mkdir is atomic).
 */
export async function ensureDist(): Promise<void> {
  if (!stale()) return;
  const lock = join(ROOT, '.cache', 'dist-build.lock');
  mkdirSync(join(ROOT, '.cache'), { recursive: true });
  const start = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock left by a killed run is older than any build takes.
      const st = statSync(lock, { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs > 300_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() - start > 300_000) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (stale()) {
      try {
        execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'pipe' });
      } catch (err) {
        const out = err as { stdout?: Buffer; stderr?: Buffer };
        throw new Error(`npm run build failed:\n${String(out.stdout ?? '')}${String(out.stderr ?? '')}`, {
          cause: err,
        });
      }
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
