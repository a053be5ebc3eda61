/**
 * Counters of the S3 requests a thread sends (requests, bytes received, retries, failures, and
 * request latency in histogram buckets), kept in a SharedArrayBuffer: the S3 worker thread writes
 * them, the server's thread reads them for /metrics. One writer per buffer, so plain stores do.
 */
export const S3_LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

const REQUESTS = 0;
const BYTES = 1;
const RETRIES = 2;
const ERRORS = 3;
const SECONDS = 4;
const BUCKET0 = 5;
const FIELDS = BUCKET0 + S3_LATENCY_BUCKETS.length;

export interface S3Totals {
  requests: number;
  bytes: number;
  retries: number;
  errors: number;
  seconds: number;
  /** Requests per latency bucket (not cumulative), the last for "above every bound". */
  buckets: number[];
}

export class S3Counters {
  readonly buffer: SharedArrayBuffer;
  private readonly v: Float64Array;

  constructor(buffer = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT * (FIELDS + 1))) {
    this.buffer = buffer;
    this.v = new Float64Array(buffer);
  }

  request(seconds: number, bytes: number): void {
    this.v[REQUESTS]! += 1;
    this.v[BYTES]! += bytes;
    this.v[SECONDS]! += seconds;
    const b = S3_LATENCY_BUCKETS.findIndex((le) => seconds <= le);
    this.v[BUCKET0 + (b < 0 ? S3_LATENCY_BUCKETS.length : b)]! += 1;
  }

  retry(): void {
    this.v[RETRIES]! += 1;
  }

  error(): void {
    this.v[ERRORS]! += 1;
  }

  totals(): S3Totals {
    const v = this.v;
    return {
      requests: v[REQUESTS]!,
      bytes: v[BYTES]!,
      retries: v[RETRIES]!,
      errors: v[ERRORS]!,
      seconds: v[SECONDS]!,
      buckets: Array.from(v.subarray(BUCKET0, FIELDS + 1)),
    };
  }
}

/** The counters of every S3 storage this thread opened (each has its own worker thread). */
const opened = new Set<S3Counters>();

export function registerS3Counters(c: S3Counters): void {
  opened.add(c);
}

/** The sum over every S3 storage this thread opened. */
export function s3Totals(): S3Totals {
  const out: S3Totals = {
    requests: 0,
    bytes: 0,
    retries: 0,
    errors: 0,
    seconds: 0,
    buckets: new Array<number>(S3_LATENCY_BUCKETS.length + 1).fill(0),
  };
  for (const c of opened) {
    const t = c.totals();
    out.requests += t.requests;
    out.bytes += t.bytes;
    out.retries += t.retries;
    out.errors += t.errors;
    out.seconds += t.seconds;
    t.buckets.forEach((n, i) => (out.buckets[i]! += n));
  }
  return out;
}
