import client from 'prom-client';

/**
 * A counter whose value is kept elsewhere as a running total (the index cache, the plan cache,
 * the S3 worker threads' shared counts): at each scrape it advances by what the total gained
 * since the last one, so Prometheus sees a counter (rate() and resets work), not a gauge that
 * only counts up.
 */
export function countedSince(registry: client.Registry, name: string, help: string, total: () => number): void {
  let published = 0;
  new client.Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = total();
      if (now > published) this.inc(now - published);
      published = now;
    },
  });
}
