import { LocalStorage } from './local-storage.js';
import { parseS3Url, type S3Settings } from './s3-location.js';
import { S3Storage } from './s3-storage.js';
import { isS3, type Storage } from './storage.js';

/**
 * Opens a location by its scheme. Why not in storage.ts: the backends import the interface from
 * there, so a factory beside it would tie interface and backends into an import cycle.
 */
export function openStorage(location: string, s3: S3Settings = {}): Storage {
  if (isS3(location)) return new S3Storage(parseS3Url(location), s3);
  return new LocalStorage(location);
}
