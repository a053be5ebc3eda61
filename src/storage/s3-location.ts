import { InvalidArgumentError, StorageError } from '../errors.js';

/** An s3:// location and the client settings (config `storage.s3`); no SDK here, so parsing costs nothing. */
export interface S3Settings {
  readonly endpoint?: string;
  readonly region?: string;
  /** Path-style URLs (endpoint/bucket/key), as MinIO and most self-hosted stores want; default: on when an endpoint is set. */
  readonly forcePathStyle?: boolean;
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  /** Attempts per request before its error is final (default 8: about 25 s of backoff). */
  readonly maxAttempts?: number;
  /** Bytes per ranged GET (default 256 KiB); the next `readAhead` blocks (default 4) are prefetched; `cacheBlocks` (default 64) are kept. */
  readonly blockBytes?: number;
  readonly readAhead?: number;
  readonly cacheBlocks?: number;
}

export interface S3Location {
  readonly bucket: string;
  /** The key prefix, without a trailing slash ('' for the bucket root). */
  readonly prefix: string;
}

export const keyOf = (loc: S3Location, path: string): string => (loc.prefix ? `${loc.prefix}/${path}` : path);

export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw new InvalidArgumentError('location', `"${url}" is not an s3://bucket[/prefix] URL`);
  return { bucket: m[1]!, prefix: (m[2] ?? '').replace(/\/+$/, '') };
}

/** Errors the store answers that configuration must fix; anything else is the store being unreachable. */
const REFUSED: Readonly<Record<string, string>> = {
  NoSuchBucket: 'the bucket does not exist',
  InvalidAccessKeyId:
    'the store refused the credentials (unknown access key id); check AWS_ACCESS_KEY_ID/AWS_PROFILE or storage.s3',
  SignatureDoesNotMatch:
    'the store refused the credentials (signature mismatch: wrong secret key); check AWS_SECRET_ACCESS_KEY or storage.s3',
  AccessDenied: 'access denied; check the credentials and the bucket policy',
  Forbidden: 'access denied; check the credentials and the bucket policy',
  PermanentRedirect: 'the bucket is in another region; set AWS_REGION or storage.s3.region',
};

/** The error to report for a failed request on `path` (a configuration problem, or the store unreachable after retries). */
export function s3Error(loc: S3Location, path: string, name: string, message: string): StorageError {
  const url = `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
  const refused = REFUSED[name];
  if (refused) return new StorageError(name === 'NoSuchBucket' ? `s3://${loc.bucket}` : url, refused, false);
  return new StorageError(`${url}/${path}`, `the object store failed after retries: ${name}: ${message}`, true);
}
