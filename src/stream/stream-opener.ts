import { pack } from 'msgpackr';
import { describeError, FailedPreconditionError, FlanError, InvalidArgumentError } from '../errors.js';
import type { SplitIndex } from '../index/index-reader.js';
import { checkPolicySpec } from '../mix/policy/policy-spec.js';
import { packingStrategy } from '../pack/registry.js';
import { SegmentLayout, type Segment } from '../pack/segment-layout.js';
import type { CorpusCatalog } from './corpus-catalog.js';
import type { CatalogSteps, ScanOptions } from './catalog-cache.js';
import { trainKept } from './catalog-scans.js';
import { resident } from '../splits/scan-reads.js';
import { PageMiss } from '../index/shard-pages.js';
import { makePlan, type Opening } from './planner-factory.js';
import { planReads } from './plan-reads.js';
import { decodeToken } from './resume-token.js';
import { StreamSession } from './stream-session.js';
import { parseAudio, parseSpec, specHash, type StreamSpec } from './stream-spec.js';
import type { RawOpen, RawResume } from './stream-request.js';
import { checksum } from '../util/hash.js';
import { checkResumeShuffle, parseShuffle, tokenShuffle } from './shuffle-spec.js';
import type { StreamUpdates } from './stream-updates.js';

/**
 * Turns a stream's first message into a session: a spec is validated and resolved against the
 * catalog; a resume token is decoded and checked against this index, this server's limits and
 * what the request says it expects. Why its own file: every way a first message can be wrong is
 * decided here, with the message naming the field, before any batch is planned.
 */
export class StreamOpener {
  private readonly catalog: CorpusCatalog;
  private readonly updates: StreamUpdates;
  private count = 0;

  constructor(catalog: CorpusCatalog, updates: StreamUpdates) {
    this.catalog = catalog;
    this.updates = updates;
  }

  /** Sessions opened since start (a spec planned, or a token restored). */
  get opened(): number {
    return this.count;
  }

  /**
   * A first message checked and resolved, without a plan: what `open` starts from, and all a
   * thread that does not build the stream needs (`serve --workers N` refuses a bad request here
   * with the same error, and a build worker opens the session).
   */
  opening(raw: RawOpen): Opening {
    return this.catalog.cache.run(this.openingSteps(raw));
  }

  /**
   * `opening` between event-loop turns: what it scans (train sizes, a filter's counts, a held-out
   * set's guard) is a sliced scan shared with concurrent opens, and `opts.admit` is asked before
   * the first scan (the server's planning budget), so a refused stream scans nothing.
   */
  openingAsync(raw: RawOpen, opts: ScanOptions = {}): Promise<Opening> {
    return this.catalog.scan(this.openingSteps(raw), opts);
  }

  /** `open` between event-loop turns (see openingAsync); an evaluation's item list is scanned the same way. */
  openAsync(raw: RawOpen, opts: ScanOptions = {}): Promise<StreamSession> {
    return this.catalog.scan(this.openSteps(raw), opts);
  }

  open(raw: RawOpen): StreamSession {
    return this.catalog.cache.run(this.openSteps(raw));
  }

  private *openingSteps(raw: RawOpen): CatalogSteps<Opening> {
    // An index republished under the server: what it would plan from is no longer what is there.
    const storage = this.catalog.reader.storage;
    const changed = storage.checkPublication?.() ?? storage.changed;
    if (changed !== undefined) throw new FailedPreconditionError('index_republished', changed);
    const resume = raw.resume;
    return resume ? yield* fromTokenSteps(this.fromResume(resume)) : yield* this.fromSpec(raw);
  }

  private *openSteps(raw: RawOpen): CatalogSteps<StreamSession> {
    const { catalog } = this;
    const opening = yield* this.openingSteps(raw);
    const { spec, placement, heldout, step } = opening;
    const view = catalog.audioView(spec);
    const layoutFor = (s: SplitIndex): SegmentLayout => new SegmentLayout(catalog.table(s), catalog.template, view);
    // On the serving path a planned batch is built only once its records' pages are held (read
    // ahead asynchronously); an example of a generation evaluation also names its audio ids.
    const audioIds = packingStrategy(spec.packing).sendsExamples;
    const ready = (rows: readonly (readonly Segment[])[]) =>
      catalog.reader.residentFor(
        rows.flatMap((row) => row.flatMap((seg) => seg.turns.map((t) => t.loc))),
        audioIds,
      );
    const build = (): StreamSession => {
      const { plan, layout } = makePlan(catalog, opening, layoutFor);
      const reads = planReads(layout.table, catalog.settings.readAheadSteps, audioIds);
      return new StreamSession({ spec, placement, heldout, layout, plan, step, ready, reads });
    };
    // An evaluation's items are a scan of its split, made once and shared (catalog-cache.ts).
    if (spec.split !== 'train') {
      const items = catalog.evalItemsSteps(spec, heldout);
      yield* raw.resume ? fromTokenSteps(items) : items;
    }
    const session = yield* resident(() => (raw.resume ? fromToken(build) : build()));
    this.updates.queue(session, raw.updates ?? []);
    this.count++;
    return session;
  }

  private *fromSpec(raw: RawOpen): CatalogSteps<Opening> {
    const { catalog } = this;
    if (!raw.spec) throw new InvalidArgumentError('spec', 'the first message must carry a spec or a resume token');
    const heldout = catalog.named.heldout(raw.spec.heldout);
    const mixture = catalog.named.mixture(raw.spec.mixture, 'mixture', true);
    const parsed = parseSpec(
      raw.spec,
      mixture,
      heldout.spec,
      heldout.name,
      catalog.settings.defaults,
      catalog.settings.limits,
    );
    let spec = parsed.spec;
    const audio = parseAudio(raw.spec.audio, catalog.vocab.codebooks);
    if (audio) spec = { ...spec, audio };
    const shuffle = parseShuffle(raw.spec, spec.split, catalog.settings.defaults);
    if (shuffle) spec = { ...spec, shuffle };
    const filter = catalog.filter(raw.spec.filter);
    if (filter) spec = { ...spec, filter: filter.text };
    if (
      spec.split !== 'train' &&
      (raw.spec.mixture?.name || Object.keys(raw.spec.mixture?.weights ?? {}).length > 0 || mixture.policy)
    ) {
      throw new InvalidArgumentError(
        'mixture',
        `evaluation splits are served whole and in order; a mixture applies to split "train" only`,
      );
    }
    // Admitted (planning memory) before anything is scanned.
    yield { need: { admit: { spec, placement: parsed.placement } } };
    if (filter && spec.split === 'train' && (yield* trainKept(catalog, filter, heldout.tasks)) === 0)
      throw new InvalidArgumentError(
        'filter',
        `${filter.text} keeps no train record outside the held-out set (GetCorpusInfo with this filter counts what it keeps per task)`,
      );
    if (spec.split === 'train') {
      yield* catalog.prepare(heldout, spec);
      catalog.resolveMixture(mixture, heldout, 'mixture', spec);
    }
    return { spec, placement: parsed.placement, heldout, step: 0, state: undefined };
  }

  /** Spec, placement, held-out set, step and planner state of a resume request. */
  private *fromResume(resume: RawResume): CatalogSteps<Opening> {
    const { catalog } = this;
    const { settings } = catalog;
    const p = decodeToken(resume.token ?? new Uint8Array(0), catalog.fingerprint, settings.tokenKeys);
    const spec = p.spec;
    const heldout = catalog.resolveHeldout(spec.heldout, spec.heldoutName, 'resume.token');
    if (heldout.fingerprint !== p.heldout)
      throw new FailedPreconditionError(
        'heldout_mismatch',
        "the token's held-out set resolves differently on this index",
      );
    if (resume.heldout) {
      const expected = catalog.named.heldout(resume.heldout, 'resume.heldout');
      if (expected.fingerprint !== heldout.fingerprint) {
        throw new FailedPreconditionError(
          'heldout_mismatch',
          `resume token was made under held-out set ${heldout.fingerprint.slice(0, 12)}... but the request asks for ${expected.fingerprint.slice(0, 12)}...; start a new stream to change the held-out set`,
        );
      }
    }
    if (typeof spec.mixture === 'object' && spec.mixture !== null && spec.mixture.policy !== undefined)
      checkPolicySpec(spec.mixture.policy, 'resume.token.spec.mixture.policy');
    const worldSize = resume.worldSize || p.worldSize;
    let parsed: ReturnType<typeof parseSpec>;
    try {
      parsed = parseSpec(
        { ...spec, shuffle: undefined, rank: resume.rank ?? 0, worldSize, maxBatches: resume.maxBatches ?? 0 },
        spec.mixture,
        spec.heldout,
        spec.heldoutName,
        settings.defaults,
        settings.limits,
      );
    } catch (err) {
      // Request fields keep their names; the token's own values are named as such.
      if (!(err instanceof InvalidArgumentError)) throw err;
      const { field } = err.context;
      if (PLACEMENT_FIELDS.has(field) && !(field === 'world_size' && !resume.worldSize)) throw err;
      const where = field === 'world_size' ? 'resume.token' : 'resume.token.spec';
      throw new InvalidArgumentError(`${where}.${field}`, err.message.slice(field.length + 2));
    }
    // The token's audio spec is checked like a request's (and canonical, or the hash below differs).
    const q = catalog.vocab.codebooks;
    const audio = parseAudio(spec.audio, q, 'resume.token.spec.audio');
    if (audio) parsed = { ...parsed, spec: { ...parsed.spec, audio } };
    // A trainer that says which audio it expects gets FAILED_PRECONDITION, not another layout.
    if (resume.audio) {
      const asked = parseAudio(resume.audio, q, 'resume.audio');
      if (JSON.stringify(asked) !== JSON.stringify(audio)) {
        throw new FailedPreconditionError(
          'audio_mismatch',
          `resume token was made with audio ${describeAudio(audio)} but the request asks for ${describeAudio(asked)}; start a new stream to change the audio layout`,
        );
      }
    }
    // The token's order: checked, canonical (like audio) and, if the request names one, the same.
    const shuffle = tokenShuffle(spec.shuffle);
    if (shuffle) parsed = { ...parsed, spec: { ...parsed.spec, shuffle } };
    checkResumeShuffle(resume, shuffle);
    // The token's filter, canonical like a request's; a trainer that names one must name the same.
    const filter = spec.filter === undefined ? undefined : catalog.filter(checkFilterText(spec.filter));
    if (filter) parsed = { ...parsed, spec: { ...parsed.spec, filter: filter.text } };
    if (resume.filter) {
      const asked = catalog.filter(resume.filter.text)?.text ?? '';
      if (asked !== (filter?.text ?? ''))
        throw new FailedPreconditionError(
          'filter_mismatch',
          `resume token was made with filter ${filter ? JSON.stringify(filter.text) : '(none)'} but the request asks for ${asked ? JSON.stringify(asked) : '(none)'}; start a new stream to change the filter`,
        );
    }
    // Its mixture too, exactly as a request's (weights, temperature, cap, selectors): the planner
    // restores its targets from the state and would otherwise never look at them again.
    yield { need: { admit: { spec: parsed.spec, placement: parsed.placement } } };
    if (parsed.spec.split === 'train') {
      yield* catalog.prepare(heldout, parsed.spec);
      catalog.resolveMixture(spec.mixture, heldout, 'resume.token.spec.mixture', parsed.spec);
    }
    // The token's spec must be one this server would make from a request: every field in range,
    // nothing added (a spec this server's limits refuse is refused from a token too).
    if (specHash(parsed.spec) !== p.specHash)
      throw new InvalidArgumentError(
        'resume.token.spec',
        'is not a spec this server makes (a field is missing, added or out of range)',
      );
    return { spec, placement: parsed.placement, heldout, step: p.step, state: p.state };
  }
}

/**
 * The state a stream starts from, as a digest: equal for the ranks of one job (the same spec,
 * world size, held-out set, step and planner state, whatever the rank), so they can be built
 * where they share each planned step (plan-cache.ts).
 */
export function startKey(o: Opening): string {
  return checksum(pack([o.heldout.fingerprint, specHash(o.spec), o.placement.worldSize, o.step, o.state ?? null]));
}

/** A token's filter must be a non-empty string (absent means none). */
function checkFilterText(v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '')
    throw new InvalidArgumentError('resume.token.spec.filter', 'must be a non-empty filter text');
  return v;
}

const describeAudio = (a: StreamSpec['audio']): string =>
  a ? `{codebooks: ${a.codebooks}, layout: ${a.layout}}` : '{flat, all codebooks}';

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
    throw asTokenError(err);
  }
}

/** fromToken for a sliced step (util/steps.ts). */
function* fromTokenSteps<T>(restore: CatalogSteps<T>): CatalogSteps<T> {
  try {
    return yield* restore;
  } catch (err) {
    throw asTokenError(err);
  }
}

function asTokenError(err: unknown): unknown {
  // A page not resident yet is read and the step run again (scan-reads.ts), not the token's fault.
  if (err instanceof FlanError || err instanceof PageMiss) return err;
  return new InvalidArgumentError(
    'resume.token',
    `token payload does not describe a stream this server can restore (${describeError(err)})`,
  );
}
