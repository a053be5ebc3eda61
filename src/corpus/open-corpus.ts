import type { S3Settings } from '../storage/s3-location.js';
import { isS3 } from '../storage/storage.js';
import type { CorpusFiles } from './corpus-files.js';
import { LocalCorpusFiles } from './local-corpus-files.js';
import { S3CorpusFiles } from './s3-corpus-files.js';

/** Opens a corpus by its location's scheme (kept apart from the interface, which both backends import). */
export function openCorpus(location: string, s3: S3Settings = {}): CorpusFiles {
  return isS3(location) ? new S3CorpusFiles(location, s3) : new LocalCorpusFiles(location);
}
