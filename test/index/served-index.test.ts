import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { SERVE_CLAIM } from '../../src/index/index-lock.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { FlanError } from '../../src/errors.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { check, collect, dataClient, healthClient } from '../ops/helpers/grpc.js';
import { CLI } from '../helpers/cli.js';
import { childScript } from '../helpers/child-script.js';

/**
 * A server and the index directory it serves: `flanstream index` into it is refused while the
 * server lives (its claim beside the writers' lock), and a publication changed anyway (another
 * host, a manual copy) turns the server NOT_SERVING and its streams FAILED_PRECONDITION.
 */
const SERVER = childScript(new URL('../helpers/server-child.ts', import.meta.url));
const base = mkdtempSync(join(tmpdir(), 'flanstream-served-'));
const corpus = join(base, 'corpus');
const other = join(base, 'other-index');
afterAll(() => rmSync(base, { recursive: true, force: true }));
beforeAll(async () => {
  await writeSampleCorpus(corpus, { records: 150, seed: 5 });
  await buildIndex({ corpus, out: other, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
}, 120_000);

const copy = (name: string): string => {
  const dir = join(base, name);
  // Servers of other test files serve the shared sample index at the same time: their claims
  // stay behind (a copy starts with none of them).
  cpSync(inject('sampleIndex'), dir, { recursive: true, filter: (src) => !basename(src).startsWith(SERVE_CLAIM) });
  return dir;
};

function cli(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args, '--audio-root', SAMPLE_AUDIO_ROOT], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stderr: r.stderr };
}

async function serve(index: string): Promise<{ child: ChildProcess; target: string }> {
  const child = spawn(process.execPath, [SERVER, index], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (c) => reject(new Error(`server exited with ${String(c)}`)));
  });
  return { child, target: `127.0.0.1:${port}` };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
}

const claims = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith(SERVE_CLAIM));

const spec = { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 3, maxBatches: 2 };

describe('a live server holds the directory it serves', () => {
  it('index, --part and --merge into it are refused naming the server; once it is killed, index runs', async () => {
    const dir = copy('held');
    const { child, target } = await serve(dir);
    try {
      expect(claims(dir)).toHaveLength(1);
      for (const args of [[], ['--part', '0/2'], ['--merge']]) {
        const r = cli('index', corpus, '--out', dir, ...args);
        expect(r.status, args.join(' ')).toBe(2);
        expect(r.stderr).toContain(`${dir}: a flanstream server (pid ${child.pid} on host ${hostname()}, since `);
        expect(r.stderr).toContain('is serving this index');
      }
      // Refused before anything was written: the server still serves its index.
      const c = dataClient(target);
      const r = await collect(c, { spec });
      c.close();
      expect(r.error).toBeUndefined();
      expect(r.batches).toHaveLength(2);
    } finally {
      await kill(child);
    }
    // A killed server leaves its claim; it is stale (a dead pid of this host) and the next run takes over.
    expect(claims(dir)).toHaveLength(1);
    const r = cli('index', corpus, '--out', dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(claims(dir)).toHaveLength(0);
  }, 180_000);

  it('a claim copied along with an index is not a claim on the copy', async () => {
    const dir = copy('copied-from');
    const { child } = await serve(dir);
    try {
      const again = join(base, 'copied-to');
      cpSync(dir, again, { recursive: true });
      expect(claims(again)).toHaveLength(1);
      const r = cli('index', corpus, '--out', again);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(claims(dir)).toHaveLength(1);
    } finally {
      await kill(child);
    }
  }, 180_000);
});

/** Another host (or a manual copy) publishes another index into `dir`, past any claim. */
function republishInto(dir: string): void {
  const old = new Set(readdirSync(join(dir, 'shards')));
  cpSync(join(other, 'shards'), join(dir, 'shards'), { recursive: true });
  for (const f of readdirSync(other)) if (f !== 'shards') cpSync(join(other, f), join(dir, f));
  for (const f of old) if (!existsSync(join(other, 'shards', f))) rmSync(join(dir, 'shards', f));
}

describe('an index republished under a live server', () => {
  it('a shard the reader had not opened: FAILED_PRECONDITION saying to restart (was DATA_LOSS); opened ones still read', () => {
    const dir = copy('reader');
    const r = IndexReader.open(dir);
    try {
      const first = r.uuid(0, 0);
      republishInto(dir);
      expect(r.uuid(0, 0)).toBe(first);
      let err: unknown;
      try {
        r.uuid(7, 0);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FlanError);
      expect((err as FlanError).code).toBe('FAILED_PRECONDITION');
      expect((err as FlanError).message).toContain(`${join(dir, 'manifest.msgpack')} was republished`);
    } finally {
      r.close();
    }
  });

  it('health turns NOT_SERVING and new streams get FAILED_PRECONDITION saying to restart', async () => {
    const dir = copy('republished');
    const { child, target } = await serve(dir);
    const c = dataClient(target);
    const h = healthClient(target);
    try {
      expect(await check(h)).toBe('SERVING');
      republishInto(dir);

      const fresh = await collect(c, { spec });
      expect(fresh.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(fresh.error?.details).toContain(`${join(dir, 'manifest.msgpack')} was republished`);
      expect(fresh.error?.details).toContain('restart the server');

      const deadline = Date.now() + 10_000;
      while ((await check(h)) !== 'NOT_SERVING' && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await check(h)).toBe('NOT_SERVING');
    } finally {
      c.close();
      h.close();
      await kill(child);
    }
  }, 180_000);
});
