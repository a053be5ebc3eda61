/**
 * Validation of user arguments and their conversion into the request messages of
 * `flanstream.v1.DataService.StreamBatches` (plain objects in proto-loader's camelCase shape).
 * Every problem is a `TypeError` naming the argument, raised before anything is sent.
 */
import type { AudioSpec__Output } from '../../proto/generated/flanstream/v1/AudioSpec.js';
import type { Heldout__Output } from '../../proto/generated/flanstream/v1/Heldout.js';
import type { Mixture__Output } from '../../proto/generated/flanstream/v1/Mixture.js';
import type { MixtureUpdate__Output } from '../../proto/generated/flanstream/v1/MixtureUpdate.js';
import type { Resume__Output } from '../../proto/generated/flanstream/v1/Resume.js';
import type { SpecChoices__Output } from '../../proto/generated/flanstream/v1/SpecChoices.js';
import type { StreamSpec__Output } from '../../proto/generated/flanstream/v1/StreamSpec.js';

export const SPLITS = ['train', 'heldout', 'dev', 'test'] as const;
export const PACKINGS = ['none', 'packed', 'multiturn', 'examples'] as const;
export const WITHIN = ['proportional', 'uniform', 'temperature'] as const;
export const OVERLONG = ['drop', 'truncate'] as const;
export const SCOPES = ['all', 'test'] as const;
/** Audio-token layouts (docs/real-data.md): frame-major, or the MusicGen/Moshi delay pattern. */
export const AUDIO_LAYOUTS = ['flat', 'delay'] as const;
export type AudioLayoutName = (typeof AUDIO_LAYOUTS)[number];
/** Train record orders: a permutation of each whole task, or blocks of consecutive records (fewer index pages read). */
export const SHUFFLES = ['global', 'blocks'] as const;
export type Shuffle = (typeof SHUFFLES)[number];
export type Split = (typeof SPLITS)[number];
export type Packing = (typeof PACKINGS)[number];
export type Within = (typeof WITHIN)[number];
export type Overlong = (typeof OVERLONG)[number];
export type Scope = (typeof SCOPES)[number];

/** An inline mixture; `name` picks a named one (from `corpusInfo().mixtures`) as the base. */
export interface MixtureOptions {
  readonly name?: string;
  /** Selector (`domain[/major[/minor]]`) → non-negative weight; none = natural proportions. */
  readonly weights?: Readonly<Record<string, number>>;
  readonly within?: Within;
  readonly temperature?: number;
  readonly cap?: number;
}
/** A named mixture, or an inline one. */
export type MixtureArg = string | MixtureOptions;

/** An inline held-out set. */
export interface HeldoutOptions {
  /** Selectors of held-out tasks (holding out a major task holds out all its minor tasks). */
  readonly tasks?: readonly string[];
  /** Source datasets (NN_Dataset folders, see `corpusInfo().datasets`): every record of them is held out. */
  readonly datasets?: readonly string[];
  readonly unseenFlag?: boolean;
  /** Drop train records with a held-out clip (same audio id or same codes). */
  readonly excludeSharedAudio?: boolean;
  /** N > 0: drop train records sharing an N-gram of normalized words with a held-out record (13 is usual). */
  readonly excludeOverlappingText?: number;
  readonly scope?: Scope;
}
/** A named held-out set (from `corpusInfo().heldoutSets`), or an inline one. */
export type HeldoutArg = string | HeldoutOptions;

/** The first `codebooks` codebooks (0 = all) in `layout` (default flat). */
export interface AudioOptions {
  readonly codebooks?: number;
  readonly layout?: AudioLayoutName;
}
/*
 * The request messages, from the types generated from the .proto (proto/generated): numbers as
 * numbers, any field may be left out (proto3 defaults); the spec's split and packing narrowed to
 * the names this client validates.
 */
export type AudioMessage = AudioSpec__Output;
export type MixtureMessage = Partial<Mixture__Output>;
export type HeldoutMessage = Partial<Heldout__Output>;
export interface StreamSpecMessage extends Omit<
  StreamSpec__Output,
  'split' | 'packing' | 'mixture' | 'heldout' | 'audio'
> {
  split: Split;
  packing: Packing;
  mixture?: MixtureMessage;
  heldout?: HeldoutMessage;
  audio?: AudioMessage;
}
export type MixtureUpdateMessage = Pick<MixtureUpdate__Output, 'weights' | 'applyAtStep'> &
  Partial<MixtureUpdate__Output>;
export interface ResumeMessage extends Omit<Resume__Output, 'token' | 'heldout' | 'audio'> {
  token: Uint8Array;
  heldout?: HeldoutMessage;
  audio?: AudioMessage;
}
/**
 * A client message: the first carries a spec or a resume token (plus updates), later ones
 * updates. Fields left out take their proto defaults (0, "", unset).
 */
export type StreamRequest =
  | { spec: Partial<StreamSpecMessage>; updates?: MixtureUpdateMessage[] }
  | { resume: Partial<ResumeMessage> & Pick<ResumeMessage, 'token'>; updates?: MixtureUpdateMessage[] }
  | { mixtureUpdate: MixtureUpdateMessage };

/** A mixture update not yet in effect in a handed-out batch (kept in `stateDict()`). */
export interface PendingUpdate {
  readonly weights: Readonly<Record<string, number>>;
  /** The first global step that uses the new weights. */
  readonly atStep: number;
  readonly within?: Within;
  readonly temperature?: number;
  readonly cap?: number;
}

const UINT32 = 2 ** 32 - 1;

function fail(message: string): never {
  throw new TypeError(message);
}

/** `value` as an integer in [min, max]. */
export function checkInt(name: string, value: unknown, min = 1, max = UINT32): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

export function checkChoice<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    fail(`${name} must be one of ${choices.map((c) => `"${c}"`).join(', ')}; got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/**
 * Refuses (TypeError naming the field) a spec that uses a value the server does not offer, by the
 * choices it publishes in GetCorpusInfo; a server that publishes none checks nothing.
 */
export function checkOffered(spec: StreamSpecMessage, choices: SpecChoices__Output | null | undefined): void {
  if (!choices) return;
  const fields: [string, string | undefined, string[]][] = [
    ['split', spec.split, choices.splits],
    ['packing', spec.packing, choices.packings],
    ['mixture.policy', spec.mixture?.policy, choices.policies],
    ['mixture.within', spec.mixture?.within, choices.within],
    ['audio.layout', spec.audio?.layout, choices.audioLayouts],
    ['shuffle', spec.shuffle, choices.shuffles],
    ['overlong', spec.overlong, choices.overlong],
    ['heldout.scope', spec.heldout?.scope, choices.heldoutScopes],
  ];
  for (const [name, value, offered] of fields)
    if (value && offered.length > 0 && !offered.includes(value))
      fail(`${name} "${value}" is not offered by this server; it offers: ${offered.join(', ')}`);
  if (spec.split === 'train' && choices.evalOnlyPackings.includes(spec.packing))
    fail(`packing "${spec.packing}" serves evaluation splits only on this server (heldout, dev, test)`);
}

function checkWeights(name: string, weights: unknown): Record<string, number> {
  if (typeof weights !== 'object' || weights === null || Array.isArray(weights))
    fail(`${name} must map selectors to non-negative weights`);
  const out: Record<string, number> = {};
  for (const [key, w] of Object.entries(weights)) {
    if (!key || key !== key.replace(/^\/+|\/+$/g, ''))
      fail(`${name}: selector "${key}" must be a non-empty "domain[/major[/minor]]" string`);
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0)
      fail(`${name}["${key}"] must be a finite non-negative number, got ${String(w)}`);
    out[key] = w;
  }
  return out;
}

function mixtureOptions(
  prefix: string,
  o: { within?: unknown; temperature?: unknown; cap?: unknown },
): { within?: Within; temperature?: number; cap?: number } {
  const out: { within?: Within; temperature?: number; cap?: number } = {};
  if (o.within !== undefined) out.within = checkChoice(`${prefix}within`, o.within, WITHIN);
  if (o.temperature !== undefined) {
    if (typeof o.temperature !== 'number' || !Number.isFinite(o.temperature) || o.temperature <= 0)
      fail(`${prefix}temperature must be a positive number, got ${String(o.temperature)}`);
    out.temperature = o.temperature;
  }
  if (o.cap !== undefined) out.cap = checkInt(`${prefix}cap`, o.cap, 0, Number.MAX_SAFE_INTEGER);
  return out;
}

export function buildMixture(mixture: MixtureArg | undefined): MixtureMessage | undefined {
  if (mixture === undefined) return undefined;
  if (typeof mixture === 'string') return mixture ? { name: mixture } : fail('mixture name must be non-empty');
  const unknown = Object.keys(mixture).filter((k) => !['name', 'weights', 'within', 'temperature', 'cap'].includes(k));
  if (unknown.length > 0) fail(`mixture: unknown key(s) ${unknown.join(', ')}; selector weights go under "weights"`);
  const msg: MixtureMessage = { ...mixtureOptions('mixture.', mixture) };
  if (mixture.name !== undefined) msg.name = mixture.name || fail('mixture.name must be non-empty');
  if (mixture.weights !== undefined) msg.weights = checkWeights('mixture.weights', mixture.weights);
  return msg;
}

export function buildHeldout(heldout: HeldoutArg | undefined): HeldoutMessage | undefined {
  if (heldout === undefined) return undefined;
  if (typeof heldout === 'string') return heldout ? { name: heldout } : fail('heldout name must be non-empty');
  const keys = ['tasks', 'datasets', 'unseenFlag', 'excludeSharedAudio', 'excludeOverlappingText', 'scope'];
  const unknown = Object.keys(heldout).filter((k) => !keys.includes(k));
  if (unknown.length > 0) fail(`heldout: unknown key(s) ${unknown.join(', ')}; expected ${keys.join(', ')}`);
  const tasks = heldout.tasks ?? [];
  if (!Array.isArray(tasks) || !tasks.every((t) => typeof t === 'string' && t.length > 0))
    fail('heldout.tasks must be a list of non-empty selectors');
  const datasets = heldout.datasets ?? [];
  if (!Array.isArray(datasets) || !datasets.every((t) => typeof t === 'string' && t.length > 0))
    fail('heldout.datasets must be a list of non-empty dataset folder names');
  const n = heldout.excludeOverlappingText ?? 0;
  if (!Number.isInteger(n) || n < 0 || n > 64)
    fail(`heldout.excludeOverlappingText must be an integer N in [0, 64] (0 = off, 13 is usual), got ${String(n)}`);
  const flag = (k: 'unseenFlag' | 'excludeSharedAudio'): boolean => {
    const v = heldout[k] ?? false;
    return typeof v === 'boolean' ? v : fail(`heldout.${k} must be a boolean`);
  };
  const msg: HeldoutMessage = {
    selectors: [...tasks],
    datasets: [...datasets],
    unseenFlag: flag('unseenFlag'),
    excludeSharedAudio: flag('excludeSharedAudio'),
    excludeOverlappingText: n,
    inline: true,
  };
  if (heldout.scope !== undefined) msg.scope = checkChoice('heldout.scope', heldout.scope, SCOPES);
  return msg;
}

export interface SpecArgs {
  readonly split: unknown;
  readonly batchSize: unknown;
  readonly seqLen: unknown;
  readonly packing: unknown;
  readonly mixture: MixtureArg | undefined;
  readonly heldout: HeldoutArg | undefined;
  readonly seed: unknown;
  readonly rank: number;
  readonly worldSize: number;
  readonly window?: number | undefined;
  readonly overlong?: Overlong | undefined;
  readonly maxTurns?: number | undefined;
  readonly audio?: AudioOptions | undefined;
  /** Train only; undefined = the server's default (`stream.shuffle`, `stream.shuffle_window`). */
  readonly shuffle?: Shuffle | undefined;
  readonly shuffleWindow?: number | undefined;
  /** Only records this expression keeps (e.g. `ug == "generation" and audio_seconds <= 30`); undefined = all. */
  readonly filter?: string | undefined;
}

/** Validates the audio option (the server checks `codebooks` against the corpus). */
export function buildAudio(audio: AudioOptions | undefined): AudioMessage {
  if (audio === undefined) return { codebooks: 0, layout: '' };
  const unknown = Object.keys(audio).filter((k) => !['codebooks', 'layout'].includes(k));
  if (unknown.length > 0) fail(`audio: unknown key(s) ${unknown.join(', ')}; expected codebooks, layout`);
  return {
    codebooks: audio.codebooks === undefined ? 0 : checkInt('audio.codebooks', audio.codebooks, 0),
    layout: audio.layout === undefined ? 'flat' : checkChoice('audio.layout', audio.layout, AUDIO_LAYOUTS),
  };
}

/** Validates dataset arguments into the `StreamSpec` of a fresh start (`maxBatches` is set per connection). */
export function buildSpec(a: SpecArgs): StreamSpecMessage {
  const split = checkChoice('split', a.split, SPLITS);
  const packing = checkChoice('packing', a.packing, PACKINGS);
  if (packing === 'examples' && split === 'train')
    fail('packing "examples" is for evaluation splits (heldout, dev, test), not "train"');
  const mixture = buildMixture(a.mixture);
  if (mixture && split !== 'train')
    fail(`mixture applies to split "train" only; evaluation split "${split}" is served whole`);
  const spec: StreamSpecMessage = {
    split,
    batchSize: checkInt('batchSize', a.batchSize),
    seqLen: checkInt('seqLen', a.seqLen),
    packing,
    seed: checkInt('seed', a.seed, 0, Number.MAX_SAFE_INTEGER),
    rank: a.rank,
    worldSize: a.worldSize,
    maxBatches: 0,
    window: a.window === undefined ? 0 : checkInt('window', a.window),
    overlong: a.overlong === undefined ? '' : checkChoice('overlong', a.overlong, OVERLONG),
    maxTurns: a.maxTurns === undefined ? 0 : checkInt('maxTurns', a.maxTurns),
    shuffle: a.shuffle === undefined ? '' : checkChoice('shuffle', a.shuffle, SHUFFLES),
    shuffleWindow: a.shuffleWindow === undefined ? 0 : checkInt('shuffleWindow', a.shuffleWindow, 1, 1 << 16),
    filter: a.filter === undefined ? '' : typeof a.filter === 'string' ? a.filter : fail('filter must be a string'),
  };
  if (split !== 'train' && (a.shuffle !== undefined || a.shuffleWindow !== undefined))
    fail(`shuffle applies to split "train" only; evaluation split "${split}" is served whole and in order`);
  if (a.shuffle === 'global' && a.shuffleWindow !== undefined) fail('shuffleWindow applies to shuffle "blocks" only');
  if (mixture) spec.mixture = mixture;
  const heldout = buildHeldout(a.heldout);
  if (heldout) spec.heldout = heldout;
  if (a.audio !== undefined) spec.audio = buildAudio(a.audio);
  return spec;
}

/** Validates `updateMixture` arguments into a plain (serializable) pending update. */
export function checkUpdate(
  weights: unknown,
  atStep: unknown,
  opts: { within?: Within; temperature?: number; cap?: number } = {},
): PendingUpdate {
  return {
    weights: checkWeights('weights', weights),
    atStep: checkInt('atStep', atStep, 0, Number.MAX_SAFE_INTEGER),
    ...mixtureOptions('', opts),
  };
}

export function updateMessage(u: PendingUpdate): MixtureUpdateMessage {
  const msg: MixtureUpdateMessage = { weights: { ...u.weights }, applyAtStep: u.atStep };
  if (u.within !== undefined) msg.within = u.within;
  if (u.temperature !== undefined) msg.temperature = u.temperature;
  if (u.cap !== undefined) msg.cap = u.cap;
  return msg;
}

/** Rank and world size, checked together. */
export function checkPlacement(rank: unknown, worldSize: unknown): { rank: number; worldSize: number } {
  const w = checkInt('worldSize', worldSize ?? 1);
  const r = checkInt('rank', rank ?? 0, 0, UINT32);
  if (r >= w) fail(`rank must satisfy 0 <= rank < worldSize (${w}), got ${r}`);
  return { rank: r, worldSize: w };
}

/** The positional target(s) and `targets`, merged into one ordered list without duplicates. */
/** gRPC name-resolver schemes passed through as given (`unix:/path`, `dns:///host:port`, ...). */
const GRPC_SCHEMES = ['dns', 'unix', 'unix-abstract', 'ipv4', 'ipv6', 'vsock', 'xds'];
const HOST_PORT = /^(\[[0-9A-Fa-f:.%\w]+\]|[^\s:/[\]@?#]+):(\d{1,5})$/;

/**
 * `target` if it is a server address gRPC can dial, else a TypeError showing the form. gRPC
 * reads `http://host:port` as a DNS name `//host:port` and a host without a port as port 443,
 * and retries either until the reconnect budget runs out; both are refused here at once.
 * Accepted: `host:port` (`[ipv6]:port` for IPv6 literals) and the gRPC resolver forms `dns:`,
 * `unix:`, `ipv4:`, `ipv6:`, `unix-abstract:`, `vsock:`, `xds:`.
 */
export function checkTarget(target: unknown): string {
  const form = `expected "host:port", e.g. "localhost:50051" or "[::1]:50051"`;
  if (typeof target !== 'string' || !target)
    fail(`target must be a non-empty string; ${form}, got ${JSON.stringify(target)}`);
  const colon = target.indexOf(':');
  const rest = target.slice(colon + 1);
  if (colon > 0 && GRPC_SCHEMES.includes(target.slice(0, colon).toLowerCase()) && rest && !/^\d+$/.test(rest))
    return target;
  const show = JSON.stringify(target);
  if (target.includes('://')) fail(`target ${show} is a URL; ${form} (no scheme such as http://)`);
  const m = HOST_PORT.exec(target);
  if (!m) fail(colon < 0 ? `target ${show} has no port; ${form}` : `target ${show} is not a server address; ${form}`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) fail(`target ${show} has port ${port}, outside 1..65535; ${form}`);
  return target;
}

export function normalizeTargets(
  first: string | readonly string[] | undefined,
  more: readonly string[] | undefined,
): string[] {
  const out: string[] = [];
  for (const group of [first, more]) {
    if (group === undefined) continue;
    for (const t of typeof group === 'string' ? [group] : group) {
      checkTarget(t);
      if (!out.includes(t)) out.push(t);
    }
  }
  return out.length > 0 ? out : fail('at least one target ("host:port") is required');
}
