import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';
import { NATURAL, type MixtureSpec } from '../mix/mixture.js';
import { parsePolicy } from '../mix/policy/policy-spec.js';
import type { Availability } from '../splits/availability.js';
import { HELDOUT_SCOPES, NO_HELDOUT, type HeldoutSpec, type ResolvedHeldout } from '../splits/heldout.js';
import type { RawHeldout, RawMixture } from './stream-request.js';
import { oneOf, parseWithin } from './stream-spec.js';

/** What the named sets need of the catalog (kept narrow: the catalog owns this object). */
export interface NamedSetSource {
  readonly settings: {
    readonly mixtures: Readonly<Record<string, Partial<MixtureSpec>>>;
    readonly heldoutSets: Readonly<Record<string, Partial<HeldoutSpec>>>;
    readonly defaultHeldout: string;
  };
  readonly availability: Availability;
  capSelectors(field: string, n: number): void;
  resolveHeldout(spec: HeldoutSpec, name: string, field?: string): ResolvedHeldout;
  resolveMixture(mixture: MixtureSpec, heldout: ResolvedHeldout, field?: string): Float64Array;
}

/** A configured held-out set as corpus info shows it: resolved, or why it cannot be. */
export interface NamedHeldoutView {
  readonly name: string;
  readonly spec: Partial<HeldoutSpec>;
  readonly resolved?: ResolvedHeldout;
  /** What the index lacks of it, when it is unavailable. */
  readonly missing?: readonly string[];
}

/**
 * The configured named mixtures and held-out sets, and a request's mixture or held-out set
 * merged with them (a name as the base, explicit fields on top). Why apart from the catalog's
 * caches: this is where a request's names meet the configuration, with its own error messages
 * (unknown name, unavailable on this index), used the same way by new streams, resumes, updates,
 * corpus info and the status page.
 */
export class NamedSets {
  private readonly src: NamedSetSource;

  constructor(src: NamedSetSource) {
    this.src = src;
  }

  /** Start-up check: every available named set resolves; every available mixture against the default set. */
  checkConfigured(): void {
    const { settings, availability } = this.src;
    for (const name of Object.keys(settings.heldoutSets))
      if (!availability.heldout.has(name)) this.named(name, 'config.heldout');
    // Named mixtures are checked against the default set, or against none when it is unavailable.
    const base = availability.heldout.has(settings.defaultHeldout)
      ? this.src.resolveHeldout(NO_HELDOUT, '', 'config.default_heldout')
      : this.named(settings.defaultHeldout, 'config.default_heldout');
    for (const name of Object.keys(settings.mixtures)) {
      if (!availability.mixtures.has(name))
        this.src.resolveMixture(this.mixture({ name }, 'config.mixtures'), base, `config.mixtures.${name}`);
    }
  }

  /** The configured held-out sets in configuration order. */
  heldoutSets(): NamedHeldoutView[] {
    return Object.entries(this.src.settings.heldoutSets).map(([name, spec]) => {
      const missing = this.src.availability.heldout.get(name);
      return missing ? { name, spec, missing } : { name, spec, resolved: this.named(name, 'heldout.name') };
    });
  }

  /** Names of the configured mixtures this index can honour, sorted. */
  availableMixtures(): string[] {
    return Object.keys(this.src.settings.mixtures)
      .filter((n) => !this.src.availability.mixtures.has(n))
      .sort();
  }

  named(name: string, field: string): ResolvedHeldout {
    const { settings, availability } = this.src;
    const named = settings.heldoutSets[name];
    if (!named)
      throw new InvalidArgumentError(
        field,
        `no held-out set named "${name}" (known: ${Object.keys(settings.heldoutSets).join(', ') || 'none'})`,
      );
    const missing = availability.heldout.get(name);
    if (missing) {
      const which =
        name === settings.defaultHeldout && field === 'config.default_heldout'
          ? `the default held-out set "${name}" (config default_heldout)`
          : `held-out set "${name}"`;
      throw new FailedPreconditionError(
        'heldout_unavailable',
        `${which} is unavailable on this index: it names ${missing.join(', ')}, which the index does not hold; name another set or give an inline one`,
      );
    }
    return this.src.resolveHeldout({ ...NO_HELDOUT, ...named }, name, field);
  }

  /** A request's held-out set: the default one when it says nothing, a named one, or inline. */
  heldout(raw: RawHeldout | null | undefined, field = 'heldout'): ResolvedHeldout {
    if (
      !raw ||
      (!raw.inline &&
        !raw.name &&
        !raw.selectors?.length &&
        !raw.datasets?.length &&
        !raw.unseenFlag &&
        !raw.excludeSharedAudio &&
        !raw.excludeOverlappingText)
    ) {
      return this.named(this.src.settings.defaultHeldout, 'config.default_heldout');
    }
    if (raw.name) return this.named(raw.name, `${field}.name`);
    this.src.capSelectors(`${field}.selectors`, raw.selectors?.length ?? 0);
    const spec: HeldoutSpec = {
      selectors: raw.selectors ?? [],
      datasets: raw.datasets ?? [],
      unseenFlag: raw.unseenFlag ?? false,
      excludeSharedAudio: raw.excludeSharedAudio ?? false,
      excludeOverlappingText: raw.excludeOverlappingText ?? 0,
      scope: raw.scope ? oneOf(`${field}.scope`, raw.scope, HELDOUT_SCOPES) : 'all',
    };
    return this.src.resolveHeldout(spec, '', field);
  }

  /** A raw mixture, a named one as its base, explicit fields on top; `withPolicy` for a stream spec's mixture. */
  mixture(raw: RawMixture | null | undefined, field: string, withPolicy = false): MixtureSpec {
    const { settings, availability } = this.src;
    let base: MixtureSpec = NATURAL;
    if (raw?.name) {
      const named = settings.mixtures[raw.name];
      if (!named)
        throw new InvalidArgumentError(
          `${field}.name`,
          `no mixture named "${raw.name}" (known: ${Object.keys(settings.mixtures).join(', ')})`,
        );
      const missing = availability.mixtures.get(raw.name);
      // Explicit weights replace the named ones, so only the named weights can be missing.
      if (missing && Object.keys(raw.weights ?? {}).length === 0)
        throw new FailedPreconditionError(
          'mixture_unavailable',
          `mixture "${raw.name}" is unavailable on this index: it weights ${missing.join(', ')}, which match no task of the index; name another mixture or give weights`,
        );
      base = { ...NATURAL, ...named };
    }
    if (raw?.weights) this.src.capSelectors(`${field}.weights`, Object.keys(raw.weights).length);
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
}
