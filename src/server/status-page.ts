import type { CorpusCatalog } from '../stream/corpus-catalog.js';
import type { Route } from './http-server.js';
import { STATUS_CSP, STATUS_HTML, STATUS_JS } from './status-assets.js';
import type { StreamMonitor, StreamView } from './stream-monitor.js';

export interface DomainSummary {
  readonly domain: string;
  readonly tasks: number;
  readonly train: number;
  readonly dev: number;
  readonly test: number;
  readonly textTokens: number;
  readonly audioTokens: number;
  readonly unseenTasks: number;
}

/** What /status.json answers; the page at / polls it. */
export interface StatusJson {
  readonly now: number;
  readonly startedAt: number;
  readonly ready: boolean;
  /** Domain index → name, the order of every per-domain array below. */
  readonly domains: readonly string[];
  readonly corpus: {
    readonly fingerprint: string;
    readonly records: number;
    readonly tasks: number;
    readonly quarantined: number;
    readonly quarantineByReason: Readonly<Record<string, number>>;
    readonly domains: readonly DomainSummary[];
    readonly heldoutSets: readonly { readonly name: string; readonly tasks: number | 'unavailable' }[];
  };
  readonly activeStreams: number;
  readonly streams: readonly StreamView[];
}

export interface StatusDeps {
  readonly catalog: CorpusCatalog;
  readonly monitor: StreamMonitor;
  readonly ready: () => boolean;
  readonly activeStreams: () => number;
}

function summarize(catalog: CorpusCatalog): StatusJson['corpus'] {
  const domains = catalog.domains().map((domain): DomainSummary => {
    const tasks = catalog.tasks.filter((t) => t.domain === domain);
    const sum = (f: (t: (typeof tasks)[number]) => number): number => tasks.reduce((a, t) => a + f(t), 0);
    return {
      domain,
      tasks: tasks.length,
      train: sum((t) => t.counts[0]),
      dev: sum((t) => t.counts[1]),
      test: sum((t) => t.counts[2]),
      textTokens: sum((t) => t.textTokens),
      audioTokens: sum((t) => t.audioTokens),
      unseenTasks: tasks.filter((t) => t.unseen).length,
    };
  });
  const heldoutSets = catalog.named
    .heldoutSets()
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    // An unavailable set (it names tasks this index lacks) shows as "unavailable" instead of a count.
    .map(({ name, resolved }) => ({ name, tasks: resolved ? resolved.tasks.size : ('unavailable' as const) }));
  const { total, byReason } = catalog.quarantine;
  return {
    fingerprint: catalog.fingerprint,
    records: catalog.records,
    tasks: catalog.tasks.length,
    quarantined: total,
    quarantineByReason: byReason,
    domains,
    heldoutSets,
  };
}

/** Routes of the live status page: the page (/), its script and the JSON it polls. */
export function statusRoutes(deps: StatusDeps): Record<string, Route> {
  const startedAt = Date.now();
  // The corpus does not change while it is served: summarize it once.
  const corpus = summarize(deps.catalog);
  const page = {
    type: 'text/html; charset=utf-8',
    body: STATUS_HTML,
    headers: { 'content-security-policy': STATUS_CSP },
  };
  return {
    '/': () => page,
    '/status.js': () => ({ type: 'text/javascript; charset=utf-8', body: STATUS_JS }),
    '/status.json': () => {
      const status: StatusJson = {
        now: Date.now(),
        startedAt,
        ready: deps.ready(),
        domains: deps.catalog.domains(),
        corpus,
        activeStreams: deps.activeStreams(),
        streams: deps.monitor.snapshot(),
      };
      return { type: 'application/json', body: JSON.stringify(status) };
    },
  };
}
