import client from 'prom-client';
import type { CorpusCatalog } from '../stream/corpus-catalog.js';
import type { PlanCache } from '../stream/plan-cache.js';
import type { PolicyView } from '../stream/stream-plan.js';
import type { WireBatch } from '../stream/wire-types.js';
import { registerCatalogMetrics } from './catalog-metrics.js';
import { registerS3Metrics } from './s3-metrics.js';
import { registerStreamGauges } from './stream-gauges.js';
import { TaskTally } from './task-tally.js';

/** Prometheus metrics of one server; per-(domain, task) children are bound once, not per batch. */
export class Metrics {
  readonly registry = new client.Registry();
  private readonly batches = new client.Counter({
    name: 'flanstream_batches_total',
    help: 'Batches sent',
    registers: [this.registry],
  });
  private readonly examples: TaskTally;
  private readonly textTokens: TaskTally;
  private readonly audioTokens: TaskTally;
  private readonly padding: TaskTally;
  private readonly fill = new client.Histogram({
    name: 'flanstream_batch_fill_ratio',
    help: 'Non-pad tokens / all tokens per batch',
    buckets: [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 1],
    registers: [this.registry],
  });
  private readonly build = new client.Histogram({
    name: 'flanstream_batch_build_seconds',
    help: 'Time to plan and assemble a batch',
    buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly activeStreams = new client.Gauge({
    name: 'flanstream_active_streams',
    help: 'Open StreamBatches calls',
    registers: [this.registry],
  });
  readonly connectionsRefused = new client.Counter({
    name: 'flanstream_connections_refused_total',
    help: 'gRPC connections closed by the server before serving them, by reason (max_connections, handshake_timeout, not_http2)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly watchesRefused = new client.Counter({
    name: 'flanstream_health_watches_refused_total',
    help: 'grpc.health.v1 Watch calls refused at server.max_health_watches',
    registers: [this.registry],
  });
  private readonly bytes = new client.Counter({
    name: 'flanstream_bytes_sent_total',
    help: 'Serialized StreamBatches response bytes handed to the transport',
    registers: [this.registry],
  });
  readonly updates = new client.Counter({
    name: 'flanstream_mixture_updates_total',
    help: 'Mixture updates accepted',
    registers: [this.registry],
  });
  readonly reports = new client.Counter({
    name: 'flanstream_loss_reports_total',
    help: 'Loss reports accepted',
    registers: [this.registry],
  });
  private readonly errors = new client.Counter({
    name: 'flanstream_stream_errors_total',
    help: 'Streams ended with an error status, by gRPC code name',
    labelNames: ['code'],
    registers: [this.registry],
  });
  private readonly ends = new client.Counter({
    name: 'flanstream_stream_ends_total',
    help: 'Streams ended with a StreamEnd, by reason (complete, max_batches, shutdown)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  /** Seconds of audio sent per domain (codec frames / frame rate); absent without a frame rate. */
  private readonly audioSeconds:
    { rate: number; perDomain: ReturnType<client.Counter<'domain'>['labels']>[] } | undefined;
  /** The latest batch stats of every open stream, turned into gauge values when scraped. */
  private readonly streamStats = new Map<string, WireBatch['stats']>();
  /** The open streams' policies, read when scraped (see watchPolicies). */
  private policies: () => { id: string; view: PolicyView }[] = () => [];

  /** `plans`: the catalog's plan cache, or with `serve --workers N` the workers' summed (read at scrape time). */
  constructor(catalog: CorpusCatalog, plans: Pick<PlanCache, 'counts' | 'size'> = catalog.plans) {
    const { tasks } = catalog;
    const domains = catalog.domains();
    const examples = new client.Counter({
      name: 'flanstream_examples_total',
      help: 'Examples (turns) sent, per domain and task',
      labelNames: ['domain', 'task'],
      registers: [this.registry],
      collect: () => this.examples.publish(),
    });
    const tokens = new client.Counter({
      name: 'flanstream_tokens_total',
      help: 'Tokens sent by kind: text and audio per domain and task; padding (domain="", task="") per batch',
      labelNames: ['domain', 'task', 'kind'],
      registers: [this.registry],
      collect: () => {
        for (const tally of [this.textTokens, this.audioTokens, this.padding]) tally.publish();
      },
    });
    this.examples = new TaskTally(tasks.map((t) => examples.labels(t.domain, t.path)));
    this.textTokens = new TaskTally(tasks.map((t) => tokens.labels(t.domain, t.path, 'text')));
    this.audioTokens = new TaskTally(tasks.map((t) => tokens.labels(t.domain, t.path, 'audio')));
    const rate = catalog.vocab.frameRate;
    if (rate > 0) {
      const seconds = new client.Counter({
        name: 'flanstream_audio_seconds_total',
        help: 'Seconds of audio sent, per domain (codec frames / frame rate; the same under every audio layout)',
        labelNames: ['domain'],
        registers: [this.registry],
      });
      this.audioSeconds = { rate, perDomain: domains.map((d) => seconds.labels(d)) };
    }
    // Padding belongs to a batch, not to a task; one series keeps sum by (kind) meaningful.
    this.padding = new TaskTally([tokens.labels('', '', 'padding')]);
    registerStreamGauges(this.registry, domains, this.streamStats, () => this.policies());
    registerCatalogMetrics(this.registry, catalog, plans);
    const registry = this.registry;
    client.collectDefaultMetrics({ register: registry });
    // The default collectors export these gauges with a counter's _total suffix, which promtool
    // rejects; the same values stay as nodejs_active_handles / _requests / _resources.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      registry.removeSingleMetric(name);
    registerS3Metrics(registry);
  }

  /** Where the open streams' policies come from (the stream monitor). */
  watchPolicies(source: () => { id: string; view: PolicyView }[]): void {
    this.policies = source;
  }

  /** Reports the server's built-but-unsent bytes (the send budget in use) as a gauge. */
  trackUnsent(bytes: () => number): void {
    new client.Gauge({
      name: 'flanstream_unsent_bytes',
      help: 'Batch bytes built but not yet handed to the socket, all streams',
      registers: [this.registry],
      collect() {
        this.set(bytes());
      },
    });
  }

  /** Reports the planning budget (server.plan_budget_bytes): its size, what open streams hold, and refusals. */
  trackPlans(plans: { readonly maxBytes: number; readonly bytes: number; readonly refusals: number }): void {
    new client.Gauge({
      name: 'flanstream_plan_budget_bytes',
      help: 'Planning memory the server admits streams up to (server.plan_budget_bytes)',
      registers: [this.registry],
      collect() {
        this.set(plans.maxBytes);
      },
    });
    new client.Gauge({
      name: 'flanstream_plan_bytes',
      help: 'Planning memory charged to open streams (estimated from each spec at open)',
      registers: [this.registry],
      collect() {
        this.set(plans.bytes);
      },
    });
    let published = 0;
    new client.Counter({
      name: 'flanstream_plan_refusals_total',
      help: 'Streams refused at open because server.plan_budget_bytes could not hold their planning memory',
      registers: [this.registry],
      collect() {
        this.inc(plans.refusals - published);
        published = plans.refusals;
      },
    });
  }

  /** Reports the stream sessions opened since start, on the server thread and the build workers. */
  trackOpens(opens: () => number): void {
    new client.Gauge({
      name: 'flanstream_stream_opens',
      help: 'Stream sessions opened since start (a spec planned or a token restored): one per stream, wherever it is built',
      registers: [this.registry],
      collect() {
        this.set(opens());
      },
    });
  }

  trackConnections(open: () => number): void {
    new client.Gauge({
      name: 'flanstream_connections',
      help: 'Open gRPC connections (handshaking or not)',
      registers: [this.registry],
      collect() {
        this.set(open());
      },
    });
  }

  trackWatches(open: () => number): void {
    new client.Gauge({
      name: 'flanstream_health_watches',
      help: 'Open grpc.health.v1 Watch calls',
      registers: [this.registry],
      collect() {
        this.set(open());
      },
    });
  }

  observeBatch(b: WireBatch, seconds: number, streamId: string): void {
    this.batches.inc();
    this.build.observe(seconds);
    let used = 0;
    for (let k = 0; k < b.segTask.length; k++) {
      const task = b.segTask[k] ?? 0;
      used += b.segLength[k] ?? 0;
      this.textTokens.add(task, b.segTextTokens[k] ?? 0);
      this.audioTokens.add(task, b.segAudioTokens[k] ?? 0);
      const frames = b.segAudioFrames[k] ?? 0;
      if (this.audioSeconds && frames > 0)
        this.audioSeconds.perDomain[b.segDomain[k] ?? 0]?.inc(frames / this.audioSeconds.rate);
    }
    for (const t of b.turnTask) this.examples.add(t, 1);
    // packing "examples" sends unpacked evaluation items instead of segments; they are examples too.
    for (const e of b.examples) this.examples.add(e.task, 1);
    const cells = b.batchSize * b.seqLen;
    if (cells > 0 && b.examples.length === 0) {
      this.padding.add(0, cells - used);
      this.fill.observe(used / cells);
    }
    this.streamStats.set(streamId, b.stats);
  }

  /** Counts a batch as it is handed to the transport (the client receives exactly these). */
  observeBytes(n: number): void {
    this.bytes.inc(n);
  }

  observeEnd(reason: string): void {
    this.ends.labels(reason).inc();
  }

  observeError(codeName: string): void {
    this.errors.labels(codeName).inc();
  }

  forgetStream(streamId: string): void {
    this.streamStats.delete(streamId);
  }
}
