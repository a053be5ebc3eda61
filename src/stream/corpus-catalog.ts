import { LRUCache } from 'lru-cache';
import { DOMAINS } from '../corpus/record-schema.js';
import { ResourceExhaustedError } from '../errors.js';
import type { TaskEntry } from '../index/format.js';
import { IndexReader, type SplitIndex } from '../index/index-reader.js';
import { resolveMixture, type MixtureSpec } from '../mix/mixture.js';
import type { ChatTemplate } from '../tokenize/chat-template.js';
import { SegmentLayout } from '../pack/segment-layout.js';
import { availability, type Availability } from '../splits/availability.js';
import { Contamination } from '../splits/contamination.js';
import { RecordFilter, type RecordExclusion } from '../filter/record-filter.js';
import { parseFilter, formatFilter } from '../filter/grammar.js';
import { resolveHeldout, type HeldoutSpec, type ResolvedHeldout } from '../splits/heldout.js';
import type { S3Settings } from '../storage/s3-location.js';
import type { ReadAhead } from '../index/shard-pages.js';
import { AudioView } from '../tokenize/audio-layouts/audio-view.js';
import type { TokenKeys } from './resume-token.js';
import { minKey } from '../tokenize/audio-layouts/registry.js';
import { loadChatTemplate } from './chat-template-loader.js';
import { ExampleTable } from '../index/example-table.js';
import { NamedSets } from './named-sets.js';
import { PlanCache } from './plan-cache.js';
import { ReportAgreement } from './report-agreement.js';
import { Servability } from './servable.js';
import type { SpecDefaults, SpecLimits, StreamSpec } from './stream-spec.js';

/** The stream layer's settings (mapped from the configuration once, in config/core-settings.ts). */
export interface CoreSettings {
  readonly mixtures: Readonly<Record<string, Partial<MixtureSpec>>>;
  readonly heldoutSets: Readonly<Record<string, Partial<HeldoutSpec>>>;
  readonly defaultHeldout: string;
  readonly defaults: SpecDefaults;
  readonly limits: SpecLimits;
  readonly systemPrompt: string;
  readonly cacheBytes: number;
  /** Bytes the catalog's caches of resolved held-out sets, guards, train sizes and servability may hold (stream.catalog_cache_bytes). */
  readonly catalogCacheBytes?: number;
  /** Reading pages ahead of planned steps (config index.prefetch_bytes, index.read_concurrency); default: DEFAULT_READ_AHEAD. */
  readonly readAhead?: ReadAhead;
  /** Steps per block of the recent realized-share window (default 100). */
  readonly shareWindowSteps?: number;
  /** HMAC keys of resume tokens (server.token_keys; the first signs); [] = checksummed, unsigned tokens. */
  readonly tokenKeys: TokenKeys;
  /** Client settings for an index on object storage (config storage.s3). */
  readonly s3?: S3Settings;
}

/** stream.catalog_cache_bytes by default. */
export const DEFAULT_CATALOG_CACHE_BYTES = 256 << 20;

/** One cached value of the catalog, how to count its bytes, and what it was last counted at. */
interface Held {
  readonly value: unknown;
  readonly bytes: () => number;
  readonly counted: number;
}

/** What a spec's content depends on for which records fit. */
export type Fit = Pick<StreamSpec, 'seqLen' | 'overlong' | 'audio' | 'filter'>;

/**
 * Everything a served index knows that does not belong to one stream: the open index, its chat
 * template, the configured named sets and what the index can honour of them, and the caches that
 * streams share (resolved held-out sets, decontamination guards, per-split tables, servable
 * records, train sizes, planned steps). Why one owner: every cache is keyed by index-level facts,
 * and the status page, corpus info and metrics read the corpus through these accessors instead of
 * reaching into the index manifest. Opening a stream is stream-opener.ts.
 */
export class CorpusCatalog {
  readonly reader: IndexReader;
  readonly template: ChatTemplate;
  readonly settings: CoreSettings;
  /** Named held-out sets and mixtures that name tasks this index lacks (see availability.ts). */
  readonly availability: Availability;
  /** The configured named mixtures and held-out sets, and requests merged with them. */
  readonly named: NamedSets;
  /** Train steps planned once and shared by the rank streams of a job. */
  readonly plans = new PlanCache();
  /** Whether the ranks of a job on this server report alike (report-agreement.ts). */
  readonly agreement = new ReportAgreement();
  private readonly tables = new Map<SplitIndex, ExampleTable>();
  /**
   * Resolved held-out sets, their guards, train sizes and servability, keyed by what clients
   * choose (inline sets, seq_len, audio layout): one cache, bounded by the bytes its entries hold
   * (stream.catalog_cache_bytes), least recently used first out. An evicted entry is made again
   * when next needed, the same as before (each is a function of the index and its key); streams
   * keep the ones they hold.
   */
  private readonly memo: LRUCache<string, Held>;

  private constructor(reader: IndexReader, template: ChatTemplate, settings: CoreSettings) {
    this.reader = reader;
    this.template = template;
    this.settings = settings;
    this.memo = new LRUCache<string, Held>({
      maxSize: settings.catalogCacheBytes ?? DEFAULT_CATALOG_CACHE_BYTES,
      sizeCalculation: (h) => h.counted,
    });
    this.availability = availability(settings.heldoutSets, settings.mixtures, reader);
    this.named = new NamedSets(this);
  }

  static async open(indexDir: string, settings: CoreSettings): Promise<CorpusCatalog> {
    const reader = IndexReader.open(indexDir, {
      cacheBytes: settings.cacheBytes,
      s3: settings.s3,
      ...(settings.readAhead ? { readAhead: settings.readAhead } : {}),
    });
    // A server must not say SERVING over an index whose files are gone (a concurrent or
    // interrupted index run, a deleted shard): refuse at start, naming the file.
    reader.verifyFiles();
    const catalog = new CorpusCatalog(reader, await loadChatTemplate(reader, settings.systemPrompt), settings);
    catalog.named.checkConfigured();
    return catalog;
  }

  // The corpus as the status page, corpus info and metrics show it.
  get fingerprint(): string {
    return this.reader.fingerprint;
  }
  get records(): number {
    return this.reader.manifest.records;
  }
  get tasks(): readonly TaskEntry[] {
    return this.reader.tasks;
  }
  get vocab(): IndexReader['manifest']['vocab'] {
    return this.reader.manifest.vocab;
  }
  get datasets(): IndexReader['datasets'] {
    return this.reader.datasets;
  }
  get quarantine(): { readonly total: number; readonly byReason: Readonly<Record<string, number>> } {
    return { total: this.reader.manifest.quarantined, byReason: this.reader.manifest.quarantineByReason };
  }
  get cacheStats(): IndexReader['cacheStats'] {
    return this.reader.cacheStats;
  }

  /** Bytes of pages held for planned steps not built yet. */
  get prefetchHeld(): number {
    return this.reader.prefetchHeld;
  }
  domains(): readonly string[] {
    return DOMAINS;
  }
  close(): void {
    this.reader.close();
  }

  table(split: SplitIndex): ExampleTable {
    let t = this.tables.get(split);
    if (!t) {
      t = new ExampleTable(this.reader, split);
      this.tables.set(split, t);
    }
    return t;
  }

  /** Selectors are matched against every task: their number is bounded before any work on them. */
  capSelectors(field: string, n: number): void {
    const max = this.settings.limits.maxSelectors;
    if (n > max) throw new ResourceExhaustedError(`server.max_selectors (selectors in ${field})`, n, max);
  }

  resolveHeldout(spec: HeldoutSpec, name: string, field = 'heldout'): ResolvedHeldout {
    this.capSelectors(`${field}.selectors`, Array.isArray(spec.selectors) ? spec.selectors.length : 0);
    const key = JSON.stringify(spec);
    return this.cached(
      `heldout:${key}`,
      () => resolveHeldout(spec, this.reader, name, field),
      (r) => 2 * key.length + 48 * (r.tasks.size + r.shards.size) + 512,
    );
  }

  /**
   * Target proportions over task ids. Sizes count only records a train stream can serve: held-out
   * tasks, records removed by a guard (held-out datasets, shared audio, overlapping text), and tasks none of
   * whose records fit `seqLen` under the overlong policy count zero, so their share goes to the
   * rest of their selector instead of failing the stream when they are first drawn.
   */
  resolveMixture(mixture: MixtureSpec, heldout: ResolvedHeldout, field = 'mixture', fit?: Fit): Float64Array {
    this.capSelectors(`${field}.weights`, Object.keys(mixture.weights ?? {}).length);
    return resolveMixture(mixture, this.reader, this.trainSizes(heldout, fit), heldout.tasks, field);
  }

  /** A stream's view of the stored clips under its audio spec. */
  audioView(spec: Pick<StreamSpec, 'audio'>): AudioView {
    const v = this.reader.manifest.vocab;
    return AudioView.of(spec.audio, v.codebooks, v.audioPadId);
  }

  private trainSizes(heldout: ResolvedHeldout, fit: Fit | undefined): Float64Array {
    const key = `${heldout.fingerprint}:${fit?.seqLen ?? 0}:${fit?.overlong ?? ''}:${fit?.audio ? `${fit.audio.layout}/${fit.audio.codebooks}` : ''}:${fit?.filter ?? ''}`;
    return this.cached(
      `sizes:${key}`,
      () => this.countTrain(heldout, fit),
      (sizes) => sizes.byteLength + 2 * key.length + 128,
    );
  }

  private countTrain(heldout: ResolvedHeldout, fit: Fit | undefined): Float64Array {
    const train = this.table(0);
    const filter = this.exclusion(heldout, fit?.filter);
    // The template around a record (without the optional input separator): a lower bound.
    const overhead = this.template.system.length + this.template.turnLength(0, 0, 0);
    const sizes = new Float64Array(this.reader.tasks.length);
    // Under an audio layout the task's shortest record is the layout's (precomputed per k).
    const view = fit?.audio ? this.audioView(fit) : undefined;
    const layoutKey = view && !view.identity ? minKey(view.layout.name, view.k) : undefined;
    for (const t of this.reader.tasks) {
      if (heldout.tasks.has(t.id)) continue;
      const [minLength, minCore] = (layoutKey && t.audioMins?.[layoutKey]) || [t.minLength, t.minCoreLength];
      const shortest = fit?.overlong === 'truncate' ? minCore : minLength;
      if (fit && shortest + overhead > fit.seqLen) continue;
      // The bound above only rules tasks out; whether one of its records really fits is read from
      // the index, so a task left in the mixture can always be served.
      if (fit && !this.servability(heldout, fit).has(t.id)) continue;
      let n = train.size(t.id);
      if (filter)
        for (const [shard, local] of t.runs[0] ?? [])
          for (const row of this.reader.list(shard, local, 0)) if (filter.excluded(shard, row)) n--;
      sizes[t.id] = n;
    }
    return sizes;
  }

  /** Under the stream's audio view: a draw tests fit with the lengths the stream serves. */
  servability(heldout: ResolvedHeldout, fit: Fit): Servability {
    const key = `${heldout.fingerprint}:${fit.seqLen}:${fit.overlong}:${fit.audio ? `${fit.audio.layout}/${fit.audio.codebooks}` : ''}:${fit.filter ?? ''}`;
    return this.cached(
      `servable:${key}`,
      () =>
        new Servability(
          new SegmentLayout(this.table(0), this.template, this.audioView(fit)),
          this.exclusion(heldout, fit.filter),
          fit.seqLen,
          fit.overlong,
        ),
      (s) => s.bytes + 2 * key.length,
    );
  }

  /** The set's guards (undefined when it has none), built at first use and cached. */
  guard(heldout: ResolvedHeldout): Contamination | undefined {
    if (!heldout.guarded) return undefined;
    return this.cached(
      `guard:${heldout.fingerprint}`,
      () => new Contamination(this.reader, heldout),
      (g) => g.bytes,
    );
  }

  /**
   * A stream filter from its text (undefined for none or blank), cached by canonical text with the
   * masks it has made. A text that does not parse is INVALID_ARGUMENT naming its position.
   */
  filter(text: string | undefined): RecordFilter | undefined {
    const node = parseFilter(text ?? '');
    if (!node) return undefined;
    const canonical = formatFilter(node);
    return this.cached(
      `filter:${canonical}`,
      () => new RecordFilter(this.reader, node),
      (f) => f.bytes,
    );
  }

  /** What a train stream must not serve: its held-out set's guards and its filter (undefined: nothing). */
  exclusion(heldout: ResolvedHeldout, filterText: string | undefined): RecordExclusion | undefined {
    const guard = this.guard(heldout);
    const filter = this.filter(filterText);
    if (!guard || !filter) return guard ?? filter;
    return { excluded: (shard, row) => filter.excluded(shard, row) || guard.excluded(shard, row) };
  }

  /** Bytes the catalog's cache counts its entries at (at most stream.catalog_cache_bytes). */
  get cachedBytes(): number {
    return this.memo.calculatedSize;
  }

  /**
   * The cached value under `key`, made if absent. Guards and servability grow as streams use
   * them (records classified, subsets kept): an entry is counted again at each use.
   */
  private cached<T>(key: string, make: () => T, bytes: (v: T) => number): T {
    const had = this.memo.get(key);
    if (had) {
      const now = Math.max(1, Math.ceil(had.bytes()));
      if (now !== had.counted) this.memo.set(key, { ...had, counted: now });
      return had.value as T;
    }
    const value = make();
    const held: Held = { value, bytes: () => bytes(value), counted: 1 };
    this.memo.set(key, { ...held, counted: Math.max(1, Math.ceil(held.bytes())) });
    return value;
  }
}
