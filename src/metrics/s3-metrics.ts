import type client from 'prom-client';
import { countedSince } from './counted-since.js';
import { S3_LATENCY_BUCKETS, s3Totals, type S3Totals } from '../storage/s3-stats.js';

/**
 * /metrics for an index on object storage: the requests the S3 worker threads sent, the bytes
 * they received, their latency, and the retries and failures behind an outage. The worker
 * threads count in shared memory (storage/s3-stats.ts); these read the sums when scraped.
 */
export function registerS3Metrics(registry: client.Registry): void {
  const counter = (name: string, help: string, pick: (t: S3Totals) => number): void =>
    countedSince(registry, name, help, () => pick(s3Totals()));
  counter(
    'flanstream_s3_requests_total',
    'S3 requests that succeeded (GET, HEAD, LIST), retries included',
    (t) => t.requests,
  );
  counter('flanstream_s3_received_bytes_total', 'Bytes received in S3 GET bodies', (t) => t.bytes);
  counter(
    'flanstream_s3_retries_total',
    'S3 requests that failed and were tried again (network, throttling, 5xx)',
    (t) => t.retries,
  );
  counter(
    'flanstream_s3_errors_total',
    'S3 requests that failed for good (after the retries, or not retryable: missing, refused, changed since open)',
    (t) => t.errors,
  );
  // A histogram whose counts live in the worker threads: prom-client's Histogram only observes
  // in this thread, so the exposition is assembled here from the shared bucket counts.
  const name = 'flanstream_s3_request_duration_seconds';
  registry.registerMetric({
    name,
    help: 'Latency of S3 requests that succeeded',
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const t = s3Totals();
      let cumulative = 0;
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] =
        S3_LATENCY_BUCKETS.map((le, i) => {
          cumulative += t.buckets[i]!;
          return { labels: { le }, value: cumulative, metricName: `${name}_bucket` };
        });
      values.push({ labels: { le: '+Inf' }, value: t.requests, metricName: `${name}_bucket` });
      return {
        name,
        help: 'Latency of S3 requests that succeeded',
        type: 'histogram',
        aggregator: 'sum',
        values: [
          ...values,
          { labels: {}, value: t.seconds, metricName: `${name}_sum` },
          { labels: {}, value: t.requests, metricName: `${name}_count` },
        ],
      };
    },
  } as unknown as client.Metric);
}
