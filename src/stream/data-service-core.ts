import { LRUCache } from 'lru-cache';
import { DOMAINS } from '../corpus/record-schema.js';
import { describeError, FailedPreconditionError, FlanError, InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import { TOKENIZER_FILE } from '../index/format.js';
import type { S3Settings } from '../storage/s3-location.js';
import { IndexReader, splitIndex, type SplitIndex } from '../index/index-reader.js';
import { NATURAL, resolveMixture, type MixtureSpec } from '../mix/mixture.js';
import type { LossReport } from '../mix/policy/policy-runner.js';
import { checkPolicySpec, parsePolicy, type RawPolicy } from '../mix/policy/policy-spec.js';
import { AudioView } from '../tokenize/audio-layouts/audio-view.js';
import { minKey } from '../tokenize/audio-layouts/registry.js';
import { ChatTemplate } from '../pack/chat-template.js';
import { SegmentLayout } from '../pack/segment-layout.js';
import { availability, type Availability } from '../splits/availability.js';
import { Contamination } from '../splits/contamination.js';
import { NO_HELDOUT, resolveHeldout, type HeldoutSpec, type ResolvedHeldout } from '../splits/heldout.js';
import { TextTokenizer } from '../tokenize/text-tokenizer.js';
import { EvalItems } from './eval-items.js';
import { EvalPlanner, type EvalState } from './eval-planner.js';
import { ExampleTable } from './example-table.js';
import { PlanCache } from './plan-cache.js';
import { Servability } from './servable.js';
import { parseLossReport, type RawLossReport } from './loss-report.js';
import { decodeToken } from './resume-token.js';
import { StreamSession, type Planner } from './stream-session.js';
import { MAX_PENDING_UPDATES, oneOf, parseAudio, parseSpec, parseWithin, specHash, type MixtureUpdate, type Placement, type RawSpec, type SpecDefaults, type SpecLimits, type StreamSpec } from './stream-spec.js';
import { TrainPlanner, type TrainState } from './train-planner.js';

export interface RawMixture extends RawPolicy {
  name?: string;
  weights?: Record<string, number>;
  within?: string;
  temperature?: number;
  cap?: number | string;
}
export interface RawHeldout {
  name?: string;
  selectors?: string[];
  datasets?: string[];
  unseenFlag?: boolean;
  excludeSharedAudio?: boolean;
  excludeOverlappingText?: number;
  inline?: boolean;
  scope?: string;
}
export interface RawUpdate extends RawMixture {
  applyAtStep?: number | string;
}
export interface RawOpen {
  spec?: (RawSpec & { mixture?: RawMixture | null; heldout?: RawHeldout | null }) | null;
  resume?: { token?: Uint8Array; rank?: number; worldSize?: number; maxBatches?: number | string; heldout?: RawHeldout | null; audio?: RawSpec['audio'] } | null;
  updates?: RawUpdate[];
}

export interface CoreSettings {
  readonly mixtures: Readonly<Record<string, Partial<MixtureSpec>>>;
  readonly heldoutSets: Readonly<Record<string, Partial<HeldoutSpec>>>;
  readonly defaultHeldout: string;
  readonly defaults: SpecDefaults;
  readonly limits: SpecLimits;
  readonly systemPrompt: string;
  readonly cacheBytes: number;
  /** Steps per block of the recent realized-share window (default 100). */
  readonly shareWindowSteps?: number;
  /** HMAC key of resume tokens (server.token_key); '' = checksummed, unsigned tokens. */
  readonly tokenKey: string;
  /** Client settings for an index on object storage (config storage.s3). */
  readonly s3?: S3Settings;
}

/**
 * The data service without its transport: opens the index, resolves specs, named mixtures and
 * held-out sets, and opens stream sessions. `src/server` adapts it to gRPC.
 */
export class DataServiceCore {
  readonly reader: IndexReader;
  readonly template: ChatTemplate;
  readonly settings: CoreSettings;
  /** Named held-out sets and mixtures that name tasks this index lacks (see availability.ts). */
  readonly availability: Availability;
  private readonly heldoutCache = new Map<string, ResolvedHeldout>();
  /** The decontamination guards of the sets in use, built at first use; a few sets at a time. */
  private readonly guards = new LRUCache<string, Contamination>({ max: 8 });
  private readonly tables = new Map<SplitIndex, ExampleTable>();
  private readonly sizeCache = new Map<string, Float64Array>();
  /** Per held-out set, seq_len and overlong policy; bounded, since clients choose seq_len. */
  private readonly servable = new LRUCache<string, Servability>({ max: 256 });
  /** Train steps planned once and shared by the rank streams of a job. */
  readonly plans = new PlanCache();

  private constructor(reader: IndexReader, template: ChatTemplate, settings: CoreSettings) {
    this.reader = reader;
    this.template = template;
    this.settings = settings;
    this.availability = availability(settings.heldoutSets, settings.mixtures, reader.tasks, reader.datasets);
  }

  static async open(indexDir: string, settings: CoreSettings): Promise<DataServiceCore> {
    const reader = IndexReader.open(indexDir, { cacheBytes: settings.cacheBytes, s3: settings.s3 });
    // A server must not say SERVING over an index whose files are gone (a concurrent or
    // interrupted index run, a deleted shard): refuse at start, naming the file.
    reader.verifyFiles();
    const core = new DataServiceCore(reader, await chatTemplate(reader, settings.systemPrompt), settings);
    const { heldout: noSet, mixtures: noMix } = core.availability;
    for (const name of Object.keys(settings.heldoutSets)) if (!noSet.has(name)) core.namedHeldout(name, 'config.heldout');
    // Named mixtures are checked against the default set, or against none when it is unavailable.
    const base = noSet.has(settings.defaultHeldout) ? core.resolveHeldout(NO_HELDOUT, '', 'config.default_heldout') : core.namedHeldout(settings.defaultHeldout, 'config.default_heldout');
    for (const name of Object.keys(settings.mixtures)) {
      if (!noMix.has(name)) core.resolveMixture(core.mixture({ name }, 'config.mixtures'), base, `config.mixtures.${name}`);
    }
    return core;
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
  private capSelectors(field: string, n: number): void {
    const max = this.settings.limits.maxSelectors;
    if (n > max) throw new ResourceExhaustedError(`server.max_selectors (selectors in ${field})`, n, max);
  }

  resolveHeldout(spec: HeldoutSpec, name: string, field = 'heldout'): ResolvedHeldout {
    this.capSelectors(`${field}.selectors`, Array.isArray(spec.selectors) ? spec.selectors.length : 0);
    const key = JSON.stringify(spec);
    let r = this.heldoutCache.get(key);
    if (!r) {
      r = resolveHeldout(spec, this.reader, name, field);
      this.heldoutCache.set(key, r);
    }
    return r;
  }

  /**
   * Target proportions over task ids. Sizes count only records a train stream can serve: held-out
   * tasks, records removed by a guard (held-out datasets, shared audio, overlapping text), and tasks none of
   * whose records fit `seqLen` under the overlong policy count zero, so their share goes to the
   * rest of their selector instead of failing the stream when they are first drawn.
   */
  resolveMixture(mixture: MixtureSpec, heldout: ResolvedHeldout, field = 'mixture', fit?: Fit): Float64Array {
    this.capSelectors(`${field}.weights`, Object.keys(mixture.weights ?? {}).length);
    return resolveMixture(mixture, this.reader.tasks, this.trainSizes(heldout, fit), heldout.tasks, field);
  }

  /** A stream's view of the stored clips under its audio spec. */
  audioView(spec: Pick<StreamSpec, 'audio'>): AudioView {
    const v = this.reader.manifest.vocab;
    return AudioView.of(spec.audio, v.codebooks, v.audioPadId);
  }

  private trainSizes(heldout: ResolvedHeldout, fit: Fit | undefined): Float64Array {
    const key = `${heldout.fingerprint}:${fit?.seqLen ?? 0}:${fit?.overlong ?? ''}:${fit?.audio ? `${fit.audio.layout}/${fit.audio.codebooks}` : ''}`;
    let sizes = this.sizeCache.get(key);
    if (sizes) return sizes;
    const train = this.table(0);
    const filter = this.guard(heldout);
    // The template around a record (without the optional input separator): a lower bound.
    const overhead = this.template.system.length + this.template.turnLength(0, 0, 0);
    sizes = new Float64Array(this.reader.tasks.length);
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
      if (filter) for (const [shard, local] of t.runs[0] ?? []) for (const row of this.reader.list(shard, local, 0)) if (filter.excluded(shard, row)) n--;
      sizes[t.id] = n;
    }
    this.sizeCache.set(key, sizes);
    return sizes;
  }

  servability(heldout: ResolvedHeldout, fit: Pick<StreamSpec, 'seqLen' | 'overlong'>): Servability {
    const key = `${heldout.fingerprint}:${fit.seqLen}:${fit.overlong}`;
    let s = this.servable.get(key);
    if (!s) {
      s = new Servability(new SegmentLayout(this.table(0), this.template), this.guard(heldout), fit.seqLen, fit.overlong);
      this.servable.set(key, s);
    }
    return s;
  }

  /** The set's guards (undefined when it has none), built at first use and cached. */
  guard(heldout: ResolvedHeldout): Contamination | undefined {
    if (!heldout.guarded) return undefined;
    let guard = this.guards.get(heldout.fingerprint);
    if (!guard) {
      guard = new Contamination(this.reader, heldout);
      this.guards.set(heldout.fingerprint, guard);
    }
    return guard;
  }

  private namedHeldout(name: string, field: string): ResolvedHeldout {
    const named = this.settings.heldoutSets[name];
    if (!named) throw new InvalidArgumentError(field, `no held-out set named "${name}" (known: ${Object.keys(this.settings.heldoutSets).join(', ') || 'none'})`);
    const missing = this.availability.heldout.get(name);
    if (missing) {
      const which = name === this.settings.defaultHeldout && field === 'config.default_heldout' ? `the default held-out set "${name}" (config default_heldout)` : `held-out set "${name}"`;
      throw new FailedPreconditionError('heldout_unavailable', `${which} is unavailable on this index: it names ${missing.join(', ')}, which the index does not hold; name another set or give an inline one`);
    }
    return this.resolveHeldout({ ...NO_HELDOUT, ...named }, name, field);
  }

  heldoutFromRaw(raw: RawHeldout | null | undefined, field = 'heldout'): ResolvedHeldout {
    if (!raw || (!raw.inline && !raw.name && !raw.selectors?.length && !raw.datasets?.length && !raw.unseenFlag && !raw.excludeSharedAudio && !raw.excludeOverlappingText)) {
      return this.namedHeldout(this.settings.defaultHeldout, 'config.default_heldout');
    }
    if (raw.name) return this.namedHeldout(raw.name, `${field}.name`);
    this.capSelectors(`${field}.selectors`, raw.selectors?.length ?? 0);
    const spec: HeldoutSpec = {
      selectors: raw.selectors ?? [],
      datasets: raw.datasets ?? [],
      unseenFlag: raw.unseenFlag ?? false,
      excludeSharedAudio: raw.excludeSharedAudio ?? false,
      excludeOverlappingText: raw.excludeOverlappingText ?? 0,
      scope: raw.scope ? oneOf(`${field}.scope`, raw.scope, ['all', 'test'] as const) : 'all',
    };
    return this.resolveHeldout(spec, '', field);
  }

  /** A raw mixture, a named one as its base, explicit fields on top; `withPolicy` for a stream spec's mixture. */
  mixture(raw: RawMixture | null | undefined, field: string, withPolicy = false): MixtureSpec {
    let base: MixtureSpec = NATURAL;
    if (raw?.name) {
      const named = this.settings.mixtures[raw.name];
      if (!named) throw new InvalidArgumentError(`${field}.name`, `no mixture named "${raw.name}" (known: ${Object.keys(this.settings.mixtures).join(', ')})`);
      const missing = this.availability.mixtures.get(raw.name);
      // Explicit weights replace the named ones, so only the named weights can be missing.
      if (missing && Object.keys(raw.weights ?? {}).length === 0) throw new FailedPreconditionError('mixture_unavailable', `mixture "${raw.name}" is unavailable on this index: it weights ${missing.join(', ')}, which match no task of the index; name another mixture or give weights`);
      base = { ...NATURAL, ...named };
    }
    if (raw?.weights) this.capSelectors(`${field}.weights`, Object.keys(raw.weights).length);
    // Protobuf maps have no wire order: sort selectors so equal mixtures hash (and tokenize) equally.
    const given = raw?.weights && Object.keys(raw.weights).length > 0 ? raw.weights : base.weights;
    const weights = Object.fromEntries(Object.entries(given).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const policy = withPolicy ? parsePolicy(raw ?? {}, field) : undefined;
    return {
      weights,
      within: raw?.within ? parseWithin(`${field}.within`, raw.within) : base.within,
      temperature: raw?.temperature ? raw.temperature : base.temperature,
      cap: raw?.cap ? Number(raw.cap) : base.cap,
      // Only when set: specs without a policy hash (and tokenize) as they always did.
      ...(policy ? { policy } : {}),
    };
  }

  update(raw: RawUpdate): MixtureUpdate {
    const step = Number(raw.applyAtStep ?? 0);
    if (!Number.isSafeInteger(step) || step < 0) throw new InvalidArgumentError('mixture_update.apply_at_step', `must be a non-negative integer, got ${String(raw.applyAtStep)}`);
    return { mixture: this.mixture(raw, 'mixture_update'), applyAtStep: step };
  }

  /** A trainer's loss report, checked against the index and the stream's held-out set. */
  lossReport(raw: RawLossReport, heldout: ResolvedHeldout): LossReport {
    this.taskPaths ??= this.reader.tasks.map((t) => t.path);
    return parseLossReport(raw, this.taskPaths, heldout.tasks);
  }

  /** Task index → path, for the messages of refused reports (built once: a report may come every step). */
  private taskPaths: readonly string[] | undefined;

  private planner(spec: StreamSpec, heldout: ResolvedHeldout, layoutFor: (s: SplitIndex) => SegmentLayout, state: unknown, step: number): { plan: Planner; layout: SegmentLayout } {
    if (spec.split === 'train') {
      const layout = layoutFor(0);
      const planner = new TrainPlanner(
        { spec, layout, table: layout.table, heldout, filter: this.guard(heldout), servable: this.servability(heldout, spec), resolve: (m, field) => this.resolveMixture(m, heldout, field, spec), shareWindow: this.settings.shareWindowSteps },
        state as TrainState | undefined,
        step,
      );
      return { plan: { kind: 'train', planner }, layout };
    }
    // Held-out datasets move their records of other tasks from dev/test to the heldout stream.
    const isHeld = (task: number, shard: number): boolean => heldout.tasks.has(task) || heldout.shards.has(shard);
    const want = spec.split === 'heldout';
    const splits: SplitIndex[] = want ? (heldout.spec.scope === 'test' ? [2] : [0, 1, 2]) : [splitIndex(spec.split)];
    const items = new EvalItems(this.reader, (task, shard) => isHeld(task, shard) === want, splits);
    // Evaluation items carry their own locations; the layout reads rows through any table.
    const layout = layoutFor(0);
    return { plan: { kind: 'eval', planner: new EvalPlanner(items, layout, spec, state as EvalState | undefined), items }, layout };
  }

  /** Spec, placement, held-out set, step and planner state of a resume request. */
  private resumeFrom(resume: NonNullable<RawOpen['resume']>): { spec: StreamSpec; placement: Placement; heldout: ResolvedHeldout; step: number; state: unknown } {
    const p = decodeToken(resume.token ?? new Uint8Array(0), this.reader.fingerprint, this.settings.tokenKey);
    const spec = p.spec;
    const heldout = this.resolveHeldout(spec.heldout, spec.heldoutName, 'resume.token');
    if (heldout.fingerprint !== p.heldout) throw new FailedPreconditionError('heldout_mismatch', 'the token\'s held-out set resolves differently on this index');
    if (resume.heldout) {
      const expected = this.heldoutFromRaw(resume.heldout, 'resume.heldout');
      if (expected.fingerprint !== heldout.fingerprint) {
        throw new FailedPreconditionError('heldout_mismatch', `resume token was made under held-out set ${heldout.fingerprint.slice(0, 12)}... but the request asks for ${expected.fingerprint.slice(0, 12)}...; start a new stream to change the held-out set`);
      }
    }
    if (typeof spec.mixture === 'object' && spec.mixture !== null && spec.mixture.policy !== undefined) checkPolicySpec(spec.mixture.policy, 'resume.token.spec.mixture.policy');
    const worldSize = resume.worldSize || p.worldSize;
    let parsed: ReturnType<typeof parseSpec>;
    try {
      parsed = parseSpec({ ...spec, rank: resume.rank ?? 0, worldSize, maxBatches: resume.maxBatches ?? 0 }, spec.mixture, spec.heldout, spec.heldoutName, this.settings.defaults, this.settings.limits);
    } catch (err) {
      // Request fields keep their names; the token's own values are named as such.
      if (!(err instanceof InvalidArgumentError)) throw err;
      const { field } = err.context;
      if (PLACEMENT_FIELDS.has(field) && !(field === 'world_size' && !resume.worldSize)) throw err;
      const where = field === 'world_size' ? 'resume.token' : 'resume.token.spec';
      throw new InvalidArgumentError(`${where}.${field}`, err.message.slice(field.length + 2));
    }
    // The token's audio spec is checked like a request's (and canonical, or the hash below differs).
    const q = this.reader.manifest.vocab.codebooks;
    const audio = parseAudio(spec.audio, q, 'resume.token.spec.audio');
    if (audio) parsed = { ...parsed, spec: { ...parsed.spec, audio } };
    // A trainer that says which audio it expects gets FAILED_PRECONDITION, not another layout.
    if (resume.audio) {
      const asked = parseAudio(resume.audio, q, 'resume.audio');
      if (JSON.stringify(asked) !== JSON.stringify(audio)) {
        throw new FailedPreconditionError('audio_mismatch', `resume token was made with audio ${describeAudio(audio)} but the request asks for ${describeAudio(asked)}; start a new stream to change the audio layout`);
      }
    }
    // The token's spec must be one this server would make from a request: every field in range,
    // nothing added (a spec this server's limits refuse is refused from a token too).
    if (specHash(parsed.spec) !== p.specHash) throw new InvalidArgumentError('resume.token.spec', 'is not a spec this server makes (a field is missing, added or out of range)');
    return { spec, placement: parsed.placement, heldout, step: p.step, state: p.state };
  }

  open(raw: RawOpen): StreamSession {
    let spec: StreamSpec;
    let placement: Placement;
    let heldout: ResolvedHeldout;
    let step = 0;
    let state: unknown;
    if (raw.resume) {
      const resume = raw.resume;
      ({ spec, placement, heldout, step, state } = fromToken(() => this.resumeFrom(resume)));
    } else if (raw.spec) {
      heldout = this.heldoutFromRaw(raw.spec.heldout);
      const mixture = this.mixture(raw.spec.mixture, 'mixture', true);
      ({ spec, placement } = parseSpec(raw.spec, mixture, heldout.spec, heldout.name, this.settings.defaults, this.settings.limits));
      const audio = parseAudio(raw.spec.audio, this.reader.manifest.vocab.codebooks);
      if (audio) spec = { ...spec, audio };
      if (spec.split === 'train') this.resolveMixture(mixture, heldout, 'mixture', spec);
      else if (raw.spec.mixture?.name || Object.keys(raw.spec.mixture?.weights ?? {}).length > 0 || mixture.policy) {
        throw new InvalidArgumentError('mixture', `evaluation splits are served whole and in order; a mixture applies to split "train" only`);
      }
    } else {
      throw new InvalidArgumentError('spec', 'the first message must carry a spec or a resume token');
    }
    const view = this.audioView(spec);
    const layoutFor = (s: SplitIndex): SegmentLayout => new SegmentLayout(this.table(s), this.template, view);
    const build = (): StreamSession => {
      const { plan, layout } = this.planner(spec, heldout, layoutFor, state, step);
      // Tokens passed to `restore` are this server's own, made by this very stream.
      const restore = (token: Buffer): TrainPlanner => {
        const decoded = decodeToken(token, this.reader.fingerprint, this.settings.tokenKey);
        const p = this.planner(spec, heldout, layoutFor, decoded.state, decoded.step).plan;
        if (p.kind !== 'train') throw new Error('a train stream restored into an evaluation planner');
        return p.planner;
      };
      return new StreamSession({ spec, placement, heldout, indexFingerprint: this.reader.fingerprint, tokenKey: this.settings.tokenKey, layout, plan, step, shared: { cache: this.plans, restore } });
    };
    const session = raw.resume ? fromToken(build) : build();
    const updates = raw.updates ?? [];
    if (updates.length > MAX_PENDING_UPDATES) throw new ResourceExhaustedError('pending mixture updates (updates in the first message)', updates.length, MAX_PENDING_UPDATES);
    for (const u of updates) session.addUpdate(this.update(u));
    return session;
  }

  domains(): readonly string[] {
    return DOMAINS;
  }
}

/** What a spec's content depends on for which records fit. */
type Fit = Pick<StreamSpec, 'seqLen' | 'overlong' | 'audio'>;

const describeAudio = (a: StreamSpec['audio']): string => (a ? `{codebooks: ${a.codebooks}, layout: ${a.layout}}` : '{flat, all codebooks}');

/**
 * The template from the pieces the indexer tokenized into the manifest. Parsing the index's
 * tokenizer.json takes over a second (most of opening an index), so it is loaded, and checked
 * against the manifest, only when a system prompt needs tokenizing.
 */
async function chatTemplate(reader: IndexReader, systemPrompt: string): Promise<ChatTemplate> {
  const { template, vocab } = reader.manifest;
  if (systemPrompt === '') return ChatTemplate.fromPieces(template, vocab.special);
  // Read through the index's storage: the index may be on object storage.
  const tok = TextTokenizer.fromJson(reader.storage.describe(TOKENIZER_FILE), reader.storage.readFile(TOKENIZER_FILE).toString('utf8'));
  if (tok.fingerprint !== vocab.tokenizerFingerprint) {
    throw new FailedPreconditionError('tokenizer_mismatch', `the tokenizer ${tok.name} differs from the one the index was built with; rebuild the index`);
  }
  return ChatTemplate.fromPieces(template, vocab.special, await tok.encode(systemPrompt));
}

/** Request fields of a resume (not of the token's spec). */
const PLACEMENT_FIELDS = new Set(['rank', 'world_size', 'max_batches']);

/**
 * Runs a step of rebuilding a stream from a resume token. A token is client input (checksummed,
 * not secret, so a client can re-encode any payload): whatever fails while restoring it is the
 * token's fault and must reach the client as INVALID_ARGUMENT, not as INTERNAL.
 */
function fromToken<T>(restore: () => T): T {
  try {
    return restore();
  } catch (err) {
    if (err instanceof FlanError) throw err;
    throw new InvalidArgumentError('resume.token', `token payload does not describe a stream this server can restore (${describeError(err)})`);
  }
}
