import client from 'prom-client';
import type { IndexReader } from '../index/index-reader.js';
import type { WireBatch } from '../stream/wire-types.js';

type Child = { inc(v?: number): void };

/** Prometheus metrics of one server; per-(domain, task) children are bound once, not per batch. */
export class Metrics {
  readonly registry = new client.Registry();
  private readonly batches = new client.Counter({ name: 'flanstream_batches_total', help: 'Batches sent', registers: [this.registry] });
  private readonly examples = new client.Counter({ name: 'flanstream_examples_total', help: 'Examples (turns) sent, per domain and task', labelNames: ['domain', 'task'], registers: [this.registry] });
  private readonly tokens = new client.Counter({
    name: 'flanstream_tokens_total',
    help: 'Tokens sent by kind: text and audio per domain and task; padding (domain="", task="") per batch',
    labelNames: ['domain', 'task', 'kind'],
    registers: [this.registry],
  });
  private readonly fill = new client.Histogram({ name: 'flanstream_batch_fill_ratio', help: 'Non-pad tokens / all tokens per batch', buckets: [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 1], registers: [this.registry] });
  private readonly build = new client.Histogram({ name: 'flanstream_batch_build_seconds', help: 'Time to plan and assemble a batch', buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5], registers: [this.registry] });
  readonly activeStreams = new client.Gauge({ name: 'flanstream_active_streams', help: 'Open StreamBatches calls', registers: [this.registry] });
  private readonly bytes = new client.Counter({ name: 'flanstream_bytes_sent_total', help: 'Serialized StreamBatches response bytes handed to the transport', registers: [this.registry] });
  readonly updates = new client.Counter({ name: 'flanstream_mixture_updates_total', help: 'Mixture updates accepted', registers: [this.registry] });
  private readonly errors = new client.Counter({ name: 'flanstream_stream_errors_total', help: 'Streams ended with an error status, by gRPC code name', labelNames: ['code'], registers: [this.registry] });
  private readonly ends = new client.Counter({ name: 'flanstream_stream_ends_total', help: 'Streams ended with a StreamEnd, by reason (complete, max_batches, shutdown)', labelNames: ['reason'], registers: [this.registry] });
  private readonly mixture = new client.Gauge({ name: 'flanstream_mixture_proportion', help: 'Target and realized domain proportion (of examples) per open stream', labelNames: ['stream', 'domain', 'kind'], registers: [this.registry] });
  private readonly exampleChild: Child[] = [];
  private readonly tokenChild: [Child, Child][] = [];
  private readonly paddingChild: Child;
  private readonly domains: readonly string[];

  constructor(reader: IndexReader, domains: readonly string[]) {
    this.domains = domains;
    for (const t of reader.tasks) {
      this.exampleChild.push(this.examples.labels(t.domain, t.path));
      this.tokenChild.push([this.tokens.labels(t.domain, t.path, 'text'), this.tokens.labels(t.domain, t.path, 'audio')]);
    }
    // Padding belongs to a batch, not to a task; one series keeps sum by (kind) meaningful.
    this.paddingChild = this.tokens.labels('', '', 'padding');
    const registry = this.registry;
    new client.Gauge({ name: 'flanstream_cache_hits', help: 'Index cache hits since start', registers: [registry], collect() { this.set(reader.cacheStats.hits); } });
    new client.Gauge({ name: 'flanstream_cache_misses', help: 'Index cache misses (positional reads) since start', registers: [registry], collect() { this.set(reader.cacheStats.misses); } });
    const q = new client.Gauge({ name: 'flanstream_quarantined_records', help: 'Records and files quarantined at index time, by reason', labelNames: ['reason'], registers: [registry] });
    for (const [reason, n] of Object.entries(reader.manifest.quarantineByReason)) q.labels(reason).set(n);
    new client.Gauge({ name: 'flanstream_index_records', help: 'Records in the served index', registers: [registry] }).set(reader.manifest.records);
    client.collectDefaultMetrics({ register: registry });
  }

  /** Counts a batch as it is handed to the transport (the client receives exactly these). */
  observeBatch(b: WireBatch, seconds: number, streamId: string): void {
    this.batches.inc();
    this.build.observe(seconds);
    let used = 0;
    for (let k = 0; k < b.segTask.length; k++) {
      const task = b.segTask[k] ?? 0;
      used += b.segLength[k] ?? 0;
      const [text, audio] = this.tokenChild[task] ?? [];
      text?.inc(b.segTextTokens[k] ?? 0);
      audio?.inc(b.segAudioTokens[k] ?? 0);
    }
    for (const t of b.turnTask) this.exampleChild[t]?.inc();
    // packing "examples" sends unpacked evaluation items instead of segments; they are examples too.
    for (const e of b.examples) this.exampleChild[e.task]?.inc();
    const cells = b.batchSize * b.seqLen;
    if (cells > 0 && b.examples.length === 0) {
      this.paddingChild.inc(cells - used);
      this.fill.observe(used / cells);
    }
    const total = b.stats.domainExamples.reduce((a, c) => a + c, 0);
    this.domains.forEach((d, i) => {
      this.mixture.labels(streamId, d, 'target').set(b.stats.domainTarget[i] ?? 0);
      this.mixture.labels(streamId, d, 'realized').set(total > 0 ? (b.stats.domainExamples[i] ?? 0) / total : 0);
    });
  }

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
    for (const d of this.domains) for (const kind of ['target', 'realized']) this.mixture.remove(streamId, d, kind);
  }
}
