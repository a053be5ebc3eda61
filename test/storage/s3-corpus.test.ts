import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildIndex } from '../../src/index/build-index.js';
import { buildIndexTo } from '../../src/index/build-to.js';
import { findShards } from '../../src/index/find-shards.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { makeClient } from '../../src/storage/s3-client.js';
import type { S3Settings } from '../../src/storage/s3-location.js';
import { indexTree } from '../helpers/index-tree.js';
import { S3Process } from '../helpers/s3-server.js';
import { CLI } from '../helpers/cli.js';

/**
 * A corpus on object storage (`flanstream index s3://bucket/prefix …`), against a real
 * S3-protocol server in its own process: the index equals, file for file and byte for byte, the
 * one built from the same corpus on disk — with its quarantine (a missing audio object, a broken
 * line) — also when the store restarts mid-build; a refused key or a missing bucket is a clear error.
 */
const base = mkdtempSync(join(tmpdir(), 'flanstream-s3corpus-'));
const s3 = new S3Process(join(base, 's3'), 'flan');
const corpus = join(base, 'corpus');
const URL = 's3://flan/corpus';
let settings: S3Settings;
let fromDisk: Record<string, string>;
let missingNpy: string;

/**
 * Gives each local file the modification time the store reports for its object (whole seconds, as
 * a GET's Last-Modified header has it): an index records its audio files' times to know when to
 * rebuild, and with equal times two builds must be equal to the byte.
 */
async function alignTimes(): Promise<void> {
  const client = makeClient(settings);
  let token: string | undefined;
  do {
    const r = await client.send(
      new ListObjectsV2Command({ Bucket: 'flan', Prefix: 'corpus/', ContinuationToken: token }),
    );
    for (const o of r.Contents ?? []) {
      const secs = Math.floor(o.LastModified!.getTime() / 1000);
      utimesSync(join(corpus, o.Key!.slice('corpus/'.length)), secs, secs);
    }
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
}

beforeAll(async () => {
  await s3.start();
  settings = s3.settings;
  cpSync(inject('sampleCorpus'), corpus, { recursive: true });
  // Damage to quarantine: the codes of the first clip of an scp are gone, and a shard gains a broken line.
  const scp = readFileSync(join(corpus, 'scp_files/speech/01_CommonVoice.scp'), 'utf8')
    .split('\n')[0]!
    .split(/\s+/)[1]!;
  missingNpy = `audio_tokens/${scp.replace(/\.[^./]*$/, '')}.npy`;
  unlinkSync(join(corpus, missingNpy));
  appendFileSync(
    join(
      corpus,
      findShards(corpus).find((s) => s.endsWith('.jsonl'))!,
    ),
    '{"uuid": "broken", \n',
  );
  s3.seed(corpus, 'corpus');
  await alignTimes();
  await buildIndex({ corpus, out: join(base, 'from-disk'), workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
  fromDisk = indexTree(join(base, 'from-disk'));
});

afterAll(async () => {
  await s3.stop();
  rmSync(base, { recursive: true, force: true });
});

describe('a corpus on s3://', () => {
  // Worker threads read the store in the next test (with a restart mid-build), to the same index.
  it('indexes to the same index as its copy on disk, byte for byte, quarantine included (in-process)', async () => {
    const out = join(base, 'from-s3-1');
    const s = await buildIndexTo({ corpus: URL, out, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT], s3: settings });
    expect(s.manifest.quarantineByReason).toMatchObject({ npy_missing: expect.any(Number), invalid_json: 1 });
    expect(indexTree(out)).toEqual(fromDisk);
    const report = readFileSync(join(base, 'from-s3-1', 'quarantine.jsonl'), 'utf8');
    expect(report).toContain(`audio tokens ${missingNpy} do not exist`);
    expect(readdirSync(join(base, 'from-s3-1', 'shards')).length).toBeGreaterThan(100);
  });

  it('on worker threads, the store restarted mid-build: reads are retried and the build ends with the same index, quarantine included', async () => {
    const out = join(base, 'restart');
    let restart: Promise<void> | undefined;
    // Worker threads do the reading, so this thread is free to bring the store back.
    const s = await buildIndexTo({
      corpus: URL,
      out,
      workers: 2,
      audioRoots: [SAMPLE_AUDIO_ROOT],
      s3: settings,
      onProgress: (p) => {
        if (p.shardsDone === 10) restart = s3.restart(1500);
      },
    });
    expect(restart).toBeDefined();
    await restart;
    expect(s.shardsBuilt).toBe(s.manifest.shards.length);
    expect(s.manifest.quarantineByReason).toMatchObject({ npy_missing: expect.any(Number), invalid_json: 1 });
    expect(indexTree(out)).toEqual(fromDisk);
  });

  it('a refused key, a missing bucket or an empty prefix: a clear error before anything is built', async () => {
    const out = join(base, 'refused');
    await expect(buildIndexTo({ corpus: URL, out, s3: { ...settings, accessKeyId: 'NOBODY' } })).rejects.toThrow(
      /^s3:\/\/flan\/corpus: the store refused the credentials \(unknown access key id\)/,
    );
    await expect(buildIndexTo({ corpus: 's3://no-such-bucket/corpus', out, s3: settings })).rejects.toThrow(
      /^s3:\/\/no-such-bucket: the bucket does not exist/,
    );
    await expect(buildIndexTo({ corpus: 's3://flan/nothing-here', out, s3: settings })).rejects.toThrow(
      /^s3:\/\/flan\/nothing-here: no corpus here: nothing is stored under this prefix/,
    );
  });

  it('flanstream index --config FILE takes the store from storage.s3, with no AWS environment at all', () => {
    const config = (key: string): string => {
      const file = join(base, `index-${key}.yaml`);
      writeFileSync(
        file,
        `storage:\n  s3:\n    endpoint: ${settings.endpoint}\n    access_key_id: ${key}\n    secret_access_key: S3RVER\n    max_attempts: 3\n`,
      );
      return file;
    };
    // No AWS_* variable reaches the CLI: the endpoint and keys can only come from the file.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    const run = (out: string, file: string): ReturnType<typeof spawnSync> =>
      spawnSync(
        process.execPath,
        [CLI, 'index', URL, '--out', out, '--workers', '2', '--audio-root', SAMPLE_AUDIO_ROOT, '--config', file],
        { env: { ...env, AWS_EC2_METADATA_DISABLED: 'true' }, encoding: 'utf8' },
      );
    const ok = run(join(base, 'from-cli'), config('S3RVER'));
    expect(ok.status, String(ok.stderr)).toBe(0);
    expect(indexTree(join(base, 'from-cli'))).toEqual(fromDisk);
    const refused = run(join(base, 'from-cli-refused'), config('NOBODY'));
    expect(refused.status).not.toBe(0);
    expect(String(refused.stderr)).toMatch(/s3:\/\/flan\/corpus: the store refused the credentials/);
  });
});
