import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { S3Settings } from '../../src/storage/s3-location.js';

const BIN = join(dirname(createRequire(import.meta.url).resolve('s3rver/package.json')), 'bin', 's3rver.js');
export const S3_KEY = 'S3RVER';
export const S3_SECRET = 'S3RVER';

/**
 * A real S3-protocol server (s3rver) in its own process on 127.0.0.1, storing in `dir`, with
 * `bucket` created. It accepts the key pair S3RVER/S3RVER and checks signatures, so wrong
 * credentials are refused as AWS would. `restart()` brings it back on the same port and data.
 */
export class S3Process {
  port = 0;
  private child: ChildProcess | undefined;

  constructor(
    readonly dir: string,
    readonly bucket: string,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Client settings for this server: its endpoint, the key pair it accepts, and enough attempts to ride out a restart. */
  get settings(): S3Settings {
    return { endpoint: this.endpoint, accessKeyId: S3_KEY, secretAccessKey: S3_SECRET, maxAttempts: 10 };
  }

  async start(): Promise<this> {
    // s3rver signs continuation tokens with DES, which Node 20's OpenSSL 3 leaves to its legacy
    // provider: without it every listing of more than one page fails with InternalError.
    const child = spawn(
      process.execPath,
      [
        '--openssl-legacy-provider',
        BIN,
        '-d',
        this.dir,
        '-a',
        '127.0.0.1',
        '-p',
        String(this.port),
        '--configure-bucket',
        this.bucket,
        '--silent',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const onData = (d: Buffer): void => {
        out += d.toString();
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening: ${out}`)));
    });
    return this;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.on('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /**
   * Stores every file under `dir` as an object under `prefix` of the bucket, linked straight into
   * the server's folder as s3rver keeps an uploaded object (its bytes, and their MD5 for the ETag):
   * a fixture of thousands of objects without thousands of PUTs (uploads are tested with uploads).
   * Each object is a hard link to its file, so Last-Modified is the file's modification time, and
   * the files must not be written while served.
   */
  seed(dir: string, prefix: string): void {
    const made = new Set<string>();
    for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
      const from = join(dir, f);
      if (!statSync(from).isFile()) continue;
      const to = join(this.dir, this.bucket, prefix, `${f}._S3rver_object`);
      if (!made.has(dirname(to))) mkdirSync(dirname(to), { recursive: true });
      made.add(dirname(to));
      linkSync(from, to);
      writeFileSync(`${to}.md5`, createHash('md5').update(readFileSync(from)).digest('hex'));
    }
  }

  async restart(downMs: number): Promise<void> {
    await this.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }
}

/**
 * One s3rver for a test file: a temporary folder `base` (the server stores in `base/s3`), started
 * before the file's tests and stopped and removed after them.
 */
export function useS3Process(name: string, bucket = 'flan'): { base: string; s3: S3Process } {
  const base = mkdtempSync(join(tmpdir(), `flanstream-${name}-`));
  const s3 = new S3Process(join(base, 's3'), bucket);
  beforeAll(async () => {
    await s3.start();
  });
  afterAll(async () => {
    await s3.stop();
    rmSync(base, { recursive: true, force: true });
  });
  return { base, s3 };
}
