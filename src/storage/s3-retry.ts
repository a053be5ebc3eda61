/**
 * Retries, the concurrency bound and accounting of S3 requests: which errors another attempt can fix, exponential
 * backoff on top of the SDK's own retries, the outage log (first failure, recovery, giving up),
 * and this thread's request counters that /metrics reads.
 */
import { Slots } from '../util/slots.js';
import type { S3Counters } from './s3-stats.js';

/** Errors that another attempt cannot fix: wrong credentials or bucket, a key that is not there, an object that changed (If-Match). */
const FINAL = new Set([
  'CredentialsProviderError',
  'PreconditionFailed',
  'NoSuchKey',
  'NotFound',
  'NoSuchBucket',
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidRange',
  'InvalidBucketName',
  'Forbidden',
  'PermanentRedirect',
]);

export function errorName(err: unknown): string {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (e.name === 'Unknown' || e.name === undefined)
    return status === 404
      ? 'NotFound'
      : status === 403
        ? 'Forbidden'
        : status === 412
          ? 'PreconditionFailed'
          : String(e.Code ?? e.name ?? 'Error');
  return e.name;
}

/** Where this thread counts its requests (the S3 worker sets it; /metrics reads it). */
let counters: S3Counters | undefined;
export function countRequestsIn(c: S3Counters): void {
  counters = c;
}

/** An outage: logged when a request first fails and is retried, and when one succeeds again. */
let failing = false;
function logOutage(
  event: 's3_retry' | 's3_recovered' | 's3_error',
  what: string,
  err?: unknown,
  attempt?: number,
): void {
  const e = err as { message?: string } | undefined;
  console.error(
    JSON.stringify({
      event,
      request: what,
      ...(err ? { error: errorName(err), message: e?.message ?? String(err) } : {}),
      ...(attempt ? { attempt } : {}),
    }),
  );
}

/** This thread's bound on requests in flight (the S3 worker sets it from `storage.s3.max_concurrency`). */
// Slots are taken per attempt of withRetries, so a request waiting out that backoff holds none:
// a failing object does not take the slots the reads of other objects need.
let gate: Slots | undefined;
export function limitRequestsTo(limit: number): void {
  gate = new Slots(limit);
}

/** One request (one attempt), within this thread's concurrency bound, timed and counted with the bytes it brought. */
export async function counted<T>(fn: () => Promise<T>, bytes: (r: T) => number): Promise<T> {
  const send = async (): Promise<T> => {
    const t0 = performance.now();
    const r = await fn();
    counters?.request((performance.now() - t0) / 1000, bytes(r));
    return r;
  };
  return gate ? gate.run(send) : send();
}

export async function withRetries<T>(what: string, attempts: number, fn: () => Promise<T>): Promise<T> {
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await fn();
      if (failing) {
        failing = false;
        logOutage('s3_recovered', what);
      }
      return r;
    } catch (err) {
      const final = FINAL.has(errorName(err));
      if (final || attempt >= attempts) {
        counters?.error();
        if (!final) logOutage('s3_error', what, err, attempt);
        throw err;
      }
      counters?.retry();
      if (!failing) {
        failing = true;
        logOutage('s3_retry', what, err, attempt);
      }
      await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}
