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
  /**
   * Requests in flight at once to the store per client (default 64; each attempt takes one, a
   * retry's backoff none): the ranged GETs of planned steps and of read-ahead, HEADs, listings.
   */
  readonly maxConcurrency?: number;
  /** How often a server looks whether the index it opened was republished (a HEAD of its manifest; default 5000 ms, 0: never). */
  readonly manifestCheckMs?: number;
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
  CredentialsProviderError:
    'no credentials found; set storage.s3.access_key_id and secret_access_key, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE',
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

/**
 * Where the S3 client's credentials come from, in the AWS SDK's own order of precedence, for the
 * server's log: an operator should see at start whether keys come from the config, the
 * environment, a profile, a web-identity token, a container endpoint or, last, the instance
 * metadata service (which `AWS_EC2_METADATA_DISABLED=true` turns off: tests and air-gapped hosts
 * set it so that no request can leave the machine).
 */
export function credentialSource(s: S3Settings, env: NodeJS.ProcessEnv = process.env): string {
  if (s.accessKeyId && s.secretAccessKey) return 'config (storage.s3.access_key_id)';
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return 'environment (AWS_ACCESS_KEY_ID)';
  if (env.AWS_PROFILE) return `profile "${env.AWS_PROFILE}" (AWS_PROFILE, shared config files)`;
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE) return 'web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)';
  if (env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI)
    return 'container credentials endpoint (AWS_CONTAINER_CREDENTIALS_*)';
  const last =
    env.AWS_EC2_METADATA_DISABLED?.toLowerCase() === 'true'
      ? 'nothing (AWS_EC2_METADATA_DISABLED=true)'
      : 'the instance metadata service';
  return `default chain: shared files (~/.aws) if present, else ${last}`;
}

let credentialsLogged = false;
/** Logs the credential source once per process (a structured line on stderr), before the first request. */
export function logCredentialSource(s: S3Settings): void {
  if (credentialsLogged) return;
  credentialsLogged = true;
  console.error(JSON.stringify({ event: 's3_credentials', source: credentialSource(s) }));
}
