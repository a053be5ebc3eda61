import { DOMAINS } from '../corpus/record-schema.js';
import { ResourceExhaustedError } from '../errors.js';
import type { TaskEntry } from '../index/format.js';
import { IndexReader, splitIndex, type SplitIndex } from '../index/index-reader.js';
import { EvalItems } from './eval-items.js';
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
import { loadChatTemplate } from './chat-template-loader.js';
import { ExampleTable } from '../index/example-table.js';
import { NamedSets } from './named-sets.js';
import { PlanCache } from './plan-cache.js';
import { ReportAgreement } from './report-agreement.js';
import { Servability } from './servable.js';
import { CatalogCache, type CatalogSteps, type ScanOptions } from './catalog-cache.js';
import { countTrain, join, type Fit } from './catalog-scans.js';
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
  /** Steps after the one being built whose pages a stream reads meanwhile (config index.read_ahead_steps); default 0. */
  readonly readAheadSteps?: number;
  /** Steps per block of the recent realized-share window (default 100). */
  readonly shareWindowSteps?: number;
  /** HMAC keys of resume tokens (server.token_keys; the first signs); [] = checksummed, unsigned tokens. */
  readonly tokenKeys: TokenKeys;
  /** Client settings for an index on object storage (config storage.s3). */
  readonly s3?: S3Settings;
}

/** stream.catalog_cache_bytes by default. */
export const DEFAULT_CATALOG_CACHE_BYTES = 256 << 20;

export type { Fit } from './catalog-scans.js';

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
  /** Resolved held-out sets, guards, train sizes, servability: bounded in bytes, scans shared (catalog-cache.ts). */
  readonly cache: CatalogCache;

  private constructor(reader: IndexReader, template: ChatTemplate, settings: CoreSettings) {
    this.reader = reader;
    this.template = template;
    this.settings = settings;
    this.cache = new CatalogCache(settings.catalogCacheBytes ?? DEFAULT_CATALOG_CACHE_BYTES, reader);
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
    return this.cache.cached(
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
    return resolveMixture(mixture, this.reader, this.cache.run(this.trainSizes(heldout, fit)), heldout.tasks, field);
  }

  /**
   * What a stream of this held-out set and fit scans for before it can be planned (its guard, its
   * servable tasks, its train sizes), made as a sliced scan shared by concurrent opens and cached:
   * run by `scan`, the accessors above then find it made.
   */
  *prepare(heldout: ResolvedHeldout, fit: Fit | undefined): CatalogSteps<void> {
    yield* this.trainSizes(heldout, fit);
  }

  /** The items of an evaluation stream (its split, held-out set and filter), scanned once and cached (evalItemsSteps: as a scan). */
  evalItems(spec: Pick<StreamSpec, 'split' | 'filter'>, heldout: ResolvedHeldout): EvalItems {
    return this.cache.run(this.evalItemsSteps(spec, heldout));
  }

  evalItemsSteps(spec: Pick<StreamSpec, 'split' | 'filter'>, heldout: ResolvedHeldout): CatalogSteps<EvalItems> {
    const want = spec.split === 'heldout';
    // Held-out datasets move their records of other tasks from dev/test to the heldout stream.
    const include = (task: number, shard: number): boolean =>
      (heldout.tasks.has(task) || heldout.shards.has(shard)) === want;
    const splits: SplitIndex[] = want ? (heldout.spec.scope === 'test' ? [2] : [0, 1, 2]) : [splitIndex(spec.split)];
    const filter = this.filter(spec.filter);
    const keep = filter ? (shard: number, row: number) => filter.keeps(shard, row) : undefined;
    const key = `eval:${heldout.fingerprint}:${spec.split}:${filter?.text ?? ''}`;
    return this.cache.steps(
      key,
      () => EvalItems.scan(this.reader, include, splits, keep),
      (e) => e.bytes + 2 * key.length,
    );
  }

  /** Runs a catalog scan between event-loop turns (see CatalogCache.scan). */
  scan<T>(g: CatalogSteps<T>, opts?: ScanOptions): Promise<T> {
    return this.cache.scan(g, opts);
  }

  /** A stream's view of the stored clips under its audio spec. */
  audioView(spec: Pick<StreamSpec, 'audio'>): AudioView {
    const v = this.reader.manifest.vocab;
    return AudioView.of(spec.audio, v.codebooks, v.audioPadId);
  }

  private trainSizes(heldout: ResolvedHeldout, fit: Fit | undefined): CatalogSteps<Float64Array> {
    const key = `${heldout.fingerprint}:${fit?.seqLen ?? 0}:${fit?.overlong ?? ''}:${fit?.audio ? `${fit.audio.layout}/${fit.audio.codebooks}` : ''}:${fit?.filter ?? ''}`;
    return this.cache.steps(
      `sizes:${key}`,
      () => countTrain(this, heldout, fit),
      (sizes) => sizes.byteLength + 2 * key.length + 128,
    );
  }

  /** Under the stream's audio view: a draw tests fit with the lengths the stream serves (servabilitySteps: as a scan). */
  servability(heldout: ResolvedHeldout, fit: Fit): Servability {
    return this.cache.run(this.servabilitySteps(heldout, fit));
  }

  servabilitySteps(heldout: ResolvedHeldout, fit: Fit): CatalogSteps<Servability> {
    const key = `${heldout.fingerprint}:${fit.seqLen}:${fit.overlong}:${fit.audio ? `${fit.audio.layout}/${fit.audio.codebooks}` : ''}:${fit.filter ?? ''}`;
    const make = function* (this: CorpusCatalog): CatalogSteps<Servability> {
      const exclusion = join(yield* this.guardSteps(heldout), this.filter(fit.filter));
      const layout = new SegmentLayout(this.table(0), this.template, this.audioView(fit));
      return new Servability(layout, exclusion, fit.seqLen, fit.overlong);
    };
    return this.cache.steps(
      `servable:${key}`,
      () => make.call(this),
      (s) => s.bytes + 2 * key.length,
    );
  }

  /** The set's guards (undefined when it has none), built at first use and cached (guardSteps: as a scan). */
  guard(heldout: ResolvedHeldout): Contamination | undefined {
    return this.cache.run(this.guardSteps(heldout));
  }

  *guardSteps(heldout: ResolvedHeldout): CatalogSteps<Contamination | undefined> {
    if (!heldout.guarded) return undefined;
    return yield* this.cache.steps(
      `guard:${heldout.fingerprint}`,
      () => Contamination.make(this.reader, heldout),
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
    return this.cache.cached(
      `filter:${canonical}`,
      () => new RecordFilter(this.reader, node),
      (f) => f.bytes,
    );
  }

  /** What a train stream must not serve: its held-out set's guards and its filter (undefined: nothing). */
  exclusion(heldout: ResolvedHeldout, filterText: string | undefined): RecordExclusion | undefined {
    return join(this.guard(heldout), this.filter(filterText));
  }

  /** Bytes the catalog's cache counts its entries at (at most stream.catalog_cache_bytes). */
  get cachedBytes(): number {
    return this.cache.bytes;
  }
}
