import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { headBucket, listKeys, makeClient } from './s3-client.js';
import { errorName } from './s3-retry.js';
import { deleteKeys, putFile } from './s3-write.js';
import { keyOf, parseS3Url, s3Error, type S3Settings } from './s3-location.js';
import { describeError } from '../errors.js';

/**
 * Publishes a finished local directory (an index built in a staging directory) to
 * `s3://bucket/prefix`. Content-named files already there with the same size are not sent
 * again, so republishing after an incremental build uploads only the new shards; the files in
 * `last` (the manifest) go up after everything else, so a reader never finds a manifest naming
 * a file that is not there yet. Large files go up as multipart uploads. With `prune`, objects of
 * older publications are deleted once the new manifest is in place (see PruneOptions).
 */
export interface PublishOptions {
  /** Uploaded after every other file, in this order. */
  readonly last: readonly string[];
  /** Files whose name is their content's digest: skipped when present with the same size. */
  readonly immutable: (path: string) => boolean;
  /** Files not to publish (temporaries, build-only records). */
  readonly skip?: (path: string) => boolean;
  readonly concurrency?: number;
  readonly prune?: PruneOptions;
}

/**
 * Which objects under the prefix a publication may delete after its manifest is up: those the
 * publisher owns (`owned`: index files, never whatever else shares the prefix) that neither this
 * publication nor `keep` (the previous manifest's files, still read by replicas that opened it)
 * names.
 */
export interface PruneOptions {
  readonly owned: (path: string) => boolean;
  readonly keep: ReadonlySet<string>;
}

export interface Published {
  readonly uploaded: number;
  readonly skipped: number;
  readonly bytes: number;
  /** Stale objects deleted (PruneOptions). */
  readonly deleted: number;
}

/** Fails fast, before hours of indexing, when the bucket is missing or the credentials are refused. */
export async function checkBucket(url: string, settings: S3Settings): Promise<void> {
  const loc = parseS3Url(url);
  try {
    await headBucket(makeClient(settings), loc.bucket, settings.maxAttempts ?? 8);
  } catch (err) {
    const name = errorName(err);
    throw s3Error(loc, '', name === 'NotFound' ? 'NoSuchBucket' : name, describeError(err));
  }
}

export async function publishDirectory(
  dir: string,
  url: string,
  settings: S3Settings,
  opts: PublishOptions,
): Promise<Published> {
  const loc = parseS3Url(url);
  const client = makeClient(settings);
  const attempts = settings.maxAttempts ?? 8;
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => f.split('\\').join('/'))
    .filter((f) => statSync(join(dir, f)).isFile() && !(opts.skip?.(f) ?? false))
    .sort();
  const fail =
    (path: string) =>
    (err: unknown): never => {
      throw s3Error(loc, path, errorName(err), describeError(err));
    };
  const present = new Map((await listKeys(client, loc, attempts).catch(fail(''))).map((o) => [o.key, o.size]));
  const first = files.filter((f) => !opts.last.includes(f));
  let uploaded = 0;
  let skipped = 0;
  let bytes = 0;
  const send = async (f: string): Promise<void> => {
    const size = statSync(join(dir, f)).size;
    if (opts.immutable(f) && present.get(keyOf(loc, f)) === size) {
      skipped++;
      return;
    }
    await putFile(client, loc.bucket, keyOf(loc, f), join(dir, f), attempts).catch(fail(f));
    uploaded++;
    bytes += size;
  };
  const queue = [...first];
  await Promise.all(
    Array.from({ length: opts.concurrency ?? 8 }, async () => {
      for (let f = queue.shift(); f !== undefined; f = queue.shift()) await send(f);
    }),
  );
  for (const f of opts.last) if (files.includes(f)) await send(f);
  let deleted = 0;
  if (opts.prune) {
    const { owned, keep } = opts.prune;
    const published = new Set(files);
    const from = loc.prefix ? loc.prefix.length + 1 : 0;
    const stale = [...present.keys()].filter((k) => {
      const f = k.slice(from);
      return owned(f) && !published.has(f) && !keep.has(f);
    });
    await deleteKeys(client, loc.bucket, stale, attempts).catch(fail(''));
    deleted = stale.length;
  }
  return { uploaded, skipped, bytes, deleted };
}
