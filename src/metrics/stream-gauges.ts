/**
 * Scrape-time gauges of the open streams: each stream's domain proportions (target and realized)
 * and its closed-loop policy's weights and losses. Read from the server's latest view of each
 * stream when /metrics is scraped, never on the batch path.
 */
import client from 'prom-client';
import type { PolicyView } from '../stream/stream-plan.js';
import { domainProportions } from '../stream/stream-stats.js';
import type { WireBatch } from '../stream/wire-types.js';

/** `streamStats`: the latest batch stats per open stream; `policies`: the open streams' policies. */
export function registerStreamGauges(
  registry: client.Registry,
  domains: readonly string[],
  streamStats: ReadonlyMap<string, WireBatch['stats']>,
  policies: () => { id: string; view: PolicyView }[],
): void {
  new client.Gauge({
    name: 'flanstream_mixture_proportion',
    help: 'Domain proportion of examples per open stream: kind target, realized (so far), realized_since_update (since the last mixture update took effect), realized_recent (the recent window, stream.share_window_steps)',
    labelNames: ['stream', 'domain', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [id, st] of streamStats) {
        const { target, realized, sinceUpdate, recent } = domainProportions(st);
        domains.forEach((d, i) => {
          this.labels(id, d, 'target').set(target[i] ?? 0);
          this.labels(id, d, 'realized').set(realized[i] ?? 0);
          // Train streams only (evaluation streams have no mixture to follow).
          if (sinceUpdate.length > 0) this.labels(id, d, 'realized_since_update').set(sinceUpdate[i] ?? 0);
          if (recent.length > 0) this.labels(id, d, 'realized_recent').set(recent[i] ?? 0);
        });
      }
    },
  });
  for (const [name, help, value] of [
    [
      'flanstream_policy_weight',
      'Closed-loop policy weight per arm (selector) per open stream',
      (v: PolicyView, a: number) => v.weights[a],
    ],
    [
      'flanstream_policy_loss',
      'Mean token loss per arm the policy saw at its last decision (absent: none reported)',
      (v: PolicyView, a: number) => v.losses[a],
    ],
  ] as const) {
    new client.Gauge({
      name,
      help,
      labelNames: ['stream', 'policy', 'selector'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { id, view } of policies())
          view.selectors.forEach((sel, a) => {
            const v = value(view, a);
            if (typeof v === 'number') this.labels(id, view.name, sel).set(v);
          });
      },
    });
  }
}
