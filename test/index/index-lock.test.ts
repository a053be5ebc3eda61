import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { LOCK_FILE } from '../../src/index/index-lock.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { startTestServer } from '../helpers/test-server.js';
import { collect, dataClient } from '../ops/helpers/grpc.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { CLI, distUrl } from '../helpers/cli.js';

const base = mkdtempSync(join(tmpdir(), 'flanstream-lock-'));
const corpus = join(base, 'corpus');
afterAll(() => rmSync(base, { recursive: true, force: true }));
beforeAll(async () => {
  await writeSampleCorpus(corpus, { records: 150, seed: 5 });
});

/** The CLI as a user runs it. */
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args, '--audio-root', SAMPLE_AUDIO_ROOT], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A real process holding the lock of `out` through the lock module, until it is killed. */
async function holder(out: string): Promise<ChildProcess> {
  const code = `import(${JSON.stringify(distUrl('index/index-lock.js'))}).then((m) => { m.IndexLock.acquire(${JSON.stringify(out)}); console.log('locked'); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    child.on('exit', (c) => reject(new Error(`lock holder exited with ${String(c)}`)));
  });
  return child;
}

function expectValidIndex(out: string): void {
  const r = IndexReader.open(out);
  try {
    r.verifyFiles();
    expect(r.manifest.records).toBeGreaterThan(100);
  } finally {
    r.close();
  }
  expect(existsSync(join(out, LOCK_FILE))).toBe(false);
}

describe('one index run per output directory', () => {
  it('two runs started together: exactly one is refused with a clear message, the other builds a valid index', async () => {
    const out = join(base, 'together');
    const results = await Promise.allSettled([
      buildIndex({ corpus, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] }),
      buildIndex({ corpus, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] }),
    ]);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(1);
    expect(String((refused[0] as PromiseRejectedResult).reason)).toMatch(
      new RegExp(`another \`flanstream index\` run \\(pid ${process.pid}, since .*\\) is writing this index`),
    );
    expectValidIndex(out);
  });

  it('runs that find a stale lock in the same millisecond: exactly one takes it over', async () => {
    // A dead process of this host: its lock is stale.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    const trials = 40;
    const RACERS = 6;
    const dirs = Array.from({ length: trials }, (_, i) => join(base, `stale-${i}`));
    for (const d of dirs) {
      mkdirSync(d, { recursive: true });
      writeFileSync(
        join(d, LOCK_FILE),
        JSON.stringify({ pid: deadPid, host: hostname(), since: '2020-01-01T00:00:00.000Z' }),
      );
    }
    // Each racer waits for the same instants (one per trial), then takes the lock of that trial's
    // directory. It sleeps until 4 ms before each instant and spins the rest: six racers spinning
    // through the start-up margin burned more CPU than the rest of this file.
    const start = Date.now() + 5000;
    const code = `import(${JSON.stringify(distUrl('index/index-lock.js'))}).then((m) => {
      const dirs = ${JSON.stringify(dirs)};
      const nap = new Int32Array(new SharedArrayBuffer(4));
      dirs.forEach((d, i) => {
        const at = ${start} + i * 40;
        if (at - Date.now() > 4) Atomics.wait(nap, 0, 0, at - Date.now() - 4);
        while (Date.now() < at);
        try { m.IndexLock.acquire(d); console.log(i + ' won'); } catch { console.log(i + ' refused'); }
      });
      // Alive (its locks held by a live process) until every racer is done.
      process.stdin.resume();
    });`;
    const racers = Array.from({ length: RACERS }, () =>
      spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] }),
    );
    const outputs = await Promise.all(
      racers.map(
        (r) =>
          new Promise<string>((resolve) => {
            let out = '';
            r.stdout!.on('data', (d: Buffer) => {
              out += d.toString();
              if (out.trim().split('\n').length >= trials) resolve(out);
            });
            r.on('exit', () => resolve(out));
          }),
      ),
    );
    for (const r of racers) r.kill();
    const wins = new Array<number>(trials).fill(0);
    for (const out of outputs) for (const m of out.matchAll(/^(\d+) won$/gm)) wins[Number(m[1])]!++;
    expect(outputs.map((o) => o.trim().split('\n').length)).toEqual(new Array<number>(RACERS).fill(trials));
    expect(wins).toEqual(new Array<number>(trials).fill(1));
  }, 60_000);

  it('a live holder refuses the CLI (exit 2); once it is killed its lock is stale and the next run builds', async () => {
    const out = join(base, 'killed');
    const child = await holder(out);
    try {
      const r = cli('index', corpus, '--out', out);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`another \`flanstream index\` run (pid ${child.pid}`);
      expect(existsSync(join(out, 'manifest.msgpack'))).toBe(false);
      // The parts of a partitioned build run side by side, but not beside a whole-index writer.
      for (const args of [['--part', '0/2'], ['--merge']]) {
        const p = cli('index', corpus, '--out', out, ...args);
        expect(p.status, args.join(' ')).toBe(2);
        expect(p.stderr).toContain(`another \`flanstream index\` run (pid ${child.pid}`);
      }
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    expect(existsSync(join(out, LOCK_FILE))).toBe(true); // a killed run leaves its lock behind
    const r = cli('index', corpus, '--out', out);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expectValidIndex(out);
  });

  it('a lock held on another host is never taken over: the message says how to clear it', async () => {
    const out = join(base, 'remote');
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, LOCK_FILE),
      JSON.stringify({ pid: 1, host: 'some-other-host', since: '2026-01-01T00:00:00.000Z' }),
    );
    await expect(buildIndex({ corpus, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] })).rejects.toThrow(
      `pid 1 on host some-other-host, since 2026-01-01T00:00:00.000Z) is writing this index; wait for it to finish, or delete ${join(out, LOCK_FILE)} if that run is gone`,
    );
    unlinkSync(join(out, LOCK_FILE));
    await buildIndex({ corpus, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
    expectValidIndex(out);
  });
});

describe('the server checks the index files at start', () => {
  const copy = (name: string): string => {
    const dir = join(base, name);
    cpSync(inject('sampleIndex'), dir, { recursive: true });
    return dir;
  };
  const shard = (dir: string): string => join(dir, 'shards', readdirSync(join(dir, 'shards')).sort()[3]!);

  it('a deleted shard file: start-up fails naming it (never SERVING)', async () => {
    const dir = copy('deleted');
    const f = shard(dir);
    unlinkSync(f);
    await expect(startTestServer(dir)).rejects.toThrow(`index file ${f}: shard file is missing`);
  });

  it('a shard file replaced by a directory: start-up fails naming it', async () => {
    const dir = copy('dir-at-start');
    const f = shard(dir);
    unlinkSync(f);
    mkdirSync(f);
    await expect(startTestServer(dir)).rejects.toThrow(`index file ${f}: shard file is not a regular file`);
  });

  it('a shard file replaced by a directory after start: streams get DATA_LOSS naming it, not INTERNAL', async () => {
    const dir = copy('dir-later');
    const ts = await startTestServer(dir);
    const c = dataClient(ts.target);
    try {
      for (const f of readdirSync(join(dir, 'shards'))) {
        unlinkSync(join(dir, 'shards', f));
        mkdirSync(join(dir, 'shards', f));
      }
      const r = await collect(c, {
        spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 1, maxBatches: 2 },
      });
      expect(r.error?.code).toBe(grpc.status.DATA_LOSS);
      expect(r.error?.details).toMatch(/shards\/[0-9a-f]+\.bin: shard file is not a regular file/);
    } finally {
      c.close();
      await ts.stop();
    }
  });
});
