import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { childScript } from '../helpers/child-script.js';

const CHILD = childScript(new URL('./child-server.ts', import.meta.url));

export interface ChildServer {
  readonly child: ChildProcess;
  readonly target: string;
  readonly port: number;
  readonly httpPort: number;
  /** The worst event-loop delay of the server so far, in ms (reported once a second). */
  maxLagMs(): number;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

/** A flanstream server in a child process (see child-server.ts). */
export function spawnServer(index: string, overrides: Record<string, string> = {}): Promise<ChildServer> {
  const child = spawn(process.execPath, [CHILD, index, JSON.stringify(overrides)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let lagMs = 0;
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const m of out.matchAll(/lag ([\d.]+)\n/g)) lagMs = Math.max(lagMs, Number(m[1]));
      if (out.length > 4096) out = out.slice(out.lastIndexOf('\n', out.length - 1024));
      const m = /listening (\d+) (-?\d+)/.exec(out);
      if (m) {
        const port = Number(m[1]);
        resolve({
          child,
          port,
          httpPort: Number(m[2]),
          target: `127.0.0.1:${port}`,
          maxLagMs: () => lagMs,
          async kill() {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
            await exited;
          },
        });
      }
    });
    child.once('exit', (code, sig) =>
      reject(new Error(`server child exited (${String(code ?? sig)}): ${out}\n${err}`)),
    );
  });
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Open file descriptors of a process (Linux /proc): sockets, pipes, index files. */
export function fdsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The server's open StreamBatches calls, from its Prometheus gauge. */
export async function activeStreamsAt(httpPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const m = /^flanstream_active_streams (\d+)$/m.exec(text);
  if (!m) throw new Error('no flanstream_active_streams gauge in /metrics');
  return Number(m[1]);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
