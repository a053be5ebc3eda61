import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorpusError } from '../errors.js';
import type { S3Settings } from '../storage/s3-location.js';
import { isS3 } from '../storage/storage.js';
import { digest } from '../util/hash.js';
import { AUDIO_GROUPS_NAME } from './audio-groups.js';
import { buildIndex, type BuildOptions, type BuildSummary } from './build-index.js';
import { MANIFEST_FILE, SHARDS_DIR } from './format.js';

export interface RemoteBuildOptions extends BuildOptions {
  /** Local directory the index is built in before it is published (default: one per --out under the temp dir, kept for incremental rebuilds). */
  readonly stage?: string;
  readonly s3?: S3Settings;
}

/**
 * `flanstream index … --out s3://bucket/prefix`: the index is built in a local staging directory
 * (the build writes and renames files, which object storage cannot do) and then published, the
 * manifest last. The bucket and credentials are checked before indexing starts. The staging
 * directory persists, so a rebuild reuses unchanged shards and uploads only new ones.
 */
export async function buildIndexTo(opts: RemoteBuildOptions): Promise<BuildSummary & { published?: { uploaded: number; skipped: number; bytes: number } }> {
  if (isS3(opts.corpus)) throw new CorpusError(opts.corpus, 'reading a corpus from object storage is not supported yet: copy it to local disk first (e.g. `aws s3 sync`)');
  if (!isS3(opts.out)) return buildIndex(opts);
  // The SDK is loaded only by builds that publish.
  const { checkBucket, publishDirectory } = await import('../storage/s3-upload.js');
  const settings = opts.s3 ?? {};
  await checkBucket(opts.out, settings);
  const stage = opts.stage ?? join(tmpdir(), `flanstream-stage-${digest(opts.out).slice(0, 16)}`);
  const summary = await buildIndex({ ...opts, out: stage });
  const published = await publishDirectory(stage, opts.out, settings, {
    last: [MANIFEST_FILE],
    immutable: (f) => f.startsWith(`${SHARDS_DIR}/`) || AUDIO_GROUPS_NAME.test(f),
    skip: (f) => f.endsWith('.tmp') || f.startsWith('parts/'),
  });
  return { ...summary, published };
}
