import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IndexCorruptError } from '../errors.js';
import type { S3Settings } from '../storage/s3-location.js';
import type { Published } from '../storage/s3-upload.js';
import { openStorage } from '../storage/open-storage.js';
import { isS3 } from '../storage/storage.js';
import { digest } from '../util/hash.js';
import { AUDIO_GROUPS_NAME } from './audio-groups.js';
import { DUPLICATES_NAME } from './exclusions.js';
import { buildIndex, type BuildSummary } from './build-index.js';
import type { BuildOptions } from './build-plan.js';
import { MANIFEST_FILE, SHARDS_DIR, type Manifest } from './format.js';
import { readManifestFrom } from './manifest-io.js';

export interface RemoteBuildOptions extends BuildOptions {
  /** Local directory the index is built in before it is published (default: one per --out under the temp dir, kept for incremental rebuilds). */
  readonly stage?: string;
}

/** The files of an index that a publication owns: content-named shard, audio-group and duplicates files, and temporaries. */
const owned = (f: string): boolean =>
  f.startsWith(`${SHARDS_DIR}/`) || AUDIO_GROUPS_NAME.test(f) || DUPLICATES_NAME.test(f) || f.endsWith('.tmp');

const filesOf = (m: Manifest): string[] =>
  [...m.shards.flatMap((s) => [s.file, s.quarantineFile]), m.audioGroups.file, m.exclusions.file].filter(
    (f) => f !== '',
  );

/**
 * The files the index now at `url` names: a replica that opened it reads them until it restarts,
 * so this publication keeps them. Undefined when its manifest is there but unreadable (say, of
 * another flanstream version, which older replicas may still serve): then nothing is pruned.
 */
function previousFiles(url: string, settings: S3Settings): Set<string> | undefined {
  const storage = openStorage(url, settings);
  try {
    return new Set(filesOf(readManifestFrom(storage)));
  } catch (err) {
    if (err instanceof IndexCorruptError && err.message.includes('no index here')) return new Set();
    return undefined;
  } finally {
    storage.close();
  }
}

/**
 * `flanstream index <corpus> --out s3://bucket/prefix` (the corpus a directory or itself on s3://,
 * read through CorpusFiles): the index is built in a local staging directory
 * (the build writes and renames files, which object storage cannot do) and then published, the
 * manifest last. The bucket and credentials are checked before indexing starts. The staging
 * directory persists, so a rebuild reuses unchanged shards and uploads only new ones. Once the
 * new manifest is in place, index files that neither it nor the one it replaced names are deleted:
 * a replica opened on the previous index keeps working, one two publications old must have been
 * restarted (docs/deployment.md).
 */
export async function buildIndexTo(opts: RemoteBuildOptions): Promise<BuildSummary & { published?: Published }> {
  if (!isS3(opts.out)) return buildIndex(opts);
  const settings = opts.s3 ?? {};
  await checkOut(opts.out, settings);
  const stage = stageFor(opts);
  const summary = await buildIndex({ ...opts, out: stage });
  return { ...summary, published: await publishIndex(stage, opts.out, settings) };
}

/** Fails fast, before hours of indexing, when the bucket is missing or the credentials are refused. */
export async function checkOut(url: string, settings: S3Settings): Promise<void> {
  // The SDK is loaded only by builds that publish.
  const { checkBucket } = await import('../storage/s3-upload.js');
  await checkBucket(url, settings);
}

/** The local staging directory of a build that publishes to `out` (default: one per --out under the temp dir, kept for incremental rebuilds). */
export const stageFor = (opts: { readonly out: string; readonly stage?: string }, part = ''): string =>
  opts.stage ?? join(tmpdir(), `flanstream-stage-${digest(opts.out).slice(0, 16)}${part}`);

/**
 * Publishes the index built in `stage` to `url`, the manifest last, then prunes what no current or
 * previous manifest names (and, for a merge, `alsoOwned`: the part records it consumed).
 */
export async function publishIndex(
  stage: string,
  url: string,
  settings: S3Settings,
  alsoOwned: (f: string) => boolean = () => false,
): Promise<Published> {
  const { publishDirectory } = await import('../storage/s3-upload.js');
  const keep = previousFiles(url, settings);
  return publishDirectory(stage, url, settings, {
    last: [MANIFEST_FILE],
    immutable: (f) => f.startsWith(`${SHARDS_DIR}/`) || AUDIO_GROUPS_NAME.test(f) || DUPLICATES_NAME.test(f),
    skip: (f) => f.endsWith('.tmp') || f.startsWith('parts/'),
    ...(keep ? { prune: { owned: (f: string) => owned(f) || alsoOwned(f), keep } } : {}),
  });
}
