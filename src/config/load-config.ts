import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { InvalidArgumentError, describeError } from '../errors.js';
import type { MixtureSpec } from '../mix/mixture.js';
import type { HeldoutSpec } from '../splits/heldout.js';
import { configSchema, heldoutFileSchema, mixtureFileSchema, type Config } from './schema.js';

export interface Loaded {
  readonly config: Readonly<Config>;
  readonly mixtures: Readonly<Record<string, MixtureSpec>>;
  readonly heldoutSets: Readonly<Record<string, HeldoutSpec>>;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function describe(err: z.ZodError, where: string): string {
  return err.issues.map((i) => `${where}: ${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** Every leaf key path of the schema's defaults, e.g. "server.port". */
function leafPaths(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? leafPaths(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

function setPath(o: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur = o;
  keys.slice(0, -1).forEach((k, i) => {
    if (cur[k] === undefined || cur[k] === null) cur[k] = {};
    const next = cur[k];
    // `server: 5` in the file stays an error to report, not something an override paves over.
    if (!isPlainObject(next)) throw new InvalidArgumentError(keys.slice(0, i + 1).join('.'), 'must be a mapping of keys');
    cur = next;
  });
  cur[keys[keys.length - 1]!] = value;
}

/** `server.auth_tokens` ← "a,b": list-valued keys take comma-separated strings. */
function coerce(path: string, value: string, defaults: Record<string, unknown>): unknown {
  const def = path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], defaults);
  return Array.isArray(def) ? value.split(',').map((s) => s.trim()).filter((s) => s !== '') : value;
}

/**
 * The first word after FLANSTREAM_ of every configuration variable (SERVER, INDEX, STREAM,
 * MIXTURES, HELDOUT, DEFAULT). A FLANSTREAM_* variable starting with one of them must be a known
 * key (a typo stops start-up); others (FLANSTREAM_PYTHON, FLANSTREAM_TEST_*) belong to the test
 * scripts and clients that share the prefix, and are not ours to refuse.
 */
function envHeads(paths: readonly string[]): Set<string> {
  return new Set(paths.map((p) => (p.split(/[._]/)[0] ?? '').toUpperCase()));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Builds the one frozen configuration: config file, then FLANSTREAM_* environment variables
 * (FLANSTREAM_SERVER_PORT → server.port), then `overrides` from command-line flags. This is the
 * only place that reads process.env.
 */
export function loadConfig(file: string | undefined, overrides: Record<string, string>, env: NodeJS.ProcessEnv = process.env): Loaded {
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new InvalidArgumentError('--config', `cannot read ${file}`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      // A YAML syntax error is the user's to fix: name the file, not a stack trace.
      throw new InvalidArgumentError('--config', `${file} is not valid YAML: ${describeError(err)}`);
    }
    if (doc !== null && doc !== undefined && !isPlainObject(doc)) throw new InvalidArgumentError('--config', `${file} must hold a mapping of configuration keys`);
    raw = (doc as Record<string, unknown> | null | undefined) ?? {};
  }
  const defaults = configSchema.parse({}) as unknown as Record<string, unknown>;
  const paths = leafPaths(defaults);
  const byEnv = new Map(paths.map((p) => [`FLANSTREAM_${p.replace(/\./g, '_').toUpperCase()}`, p]));
  const heads = envHeads(paths);
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('FLANSTREAM_') || value === undefined) continue;
    const path = byEnv.get(name);
    if (!path) {
      if (!heads.has(name.slice('FLANSTREAM_'.length).split('_')[0] ?? '')) continue;
      throw new InvalidArgumentError(name, `unknown environment variable; known: ${[...byEnv.keys()].join(', ')}`);
    }
    setPath(raw, path, coerce(path, value, defaults));
  }
  for (const [path, value] of Object.entries(overrides)) {
    if (!paths.includes(path)) throw new InvalidArgumentError(`--set ${path}`, `unknown configuration key; known: ${paths.join(', ')}`);
    setPath(raw, path, coerce(path, value, defaults));
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidArgumentError('config', describe(parsed.error, file ?? 'configuration'));
  const config = parsed.data;
  const heldoutSets = loadNamed(config.heldout_dir, heldoutFileSchema, toHeldout);
  // Checked here too (the server checks it against the index) so --print-config catches it.
  if (!Object.hasOwn(heldoutSets, config.default_heldout)) {
    throw new InvalidArgumentError('default_heldout', `no held-out set named "${config.default_heldout}" in ${config.heldout_dir} (known: ${Object.keys(heldoutSets).join(', ') || 'none'})`);
  }
  return deepFreeze({ config, mixtures: loadNamed(config.mixtures_dir, mixtureFileSchema, toMixture), heldoutSets });
}

/** The effective configuration as YAML for --print-config, bearer tokens masked (it goes to logs). */
export function printableConfig(config: Readonly<Config>): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(config)) as Config;
  copy.server.auth_tokens = copy.server.auth_tokens.map(() => '********');
  if (copy.server.token_key !== '') copy.server.token_key = '********';
  copy.server.token_keys = copy.server.token_keys.map(() => '********');
  if (copy.storage.s3.secret_access_key !== '') copy.storage.s3.secret_access_key = '********';
  return copy as unknown as Record<string, unknown>;
}

function toMixture(m: z.infer<typeof mixtureFileSchema>): MixtureSpec {
  return { weights: m.weights, within: m.within, temperature: m.temperature, cap: m.cap };
}

function toHeldout(h: z.infer<typeof heldoutFileSchema>): HeldoutSpec {
  return { selectors: h.tasks, datasets: h.datasets, unseenFlag: h.unseen_flag, excludeSharedAudio: h.exclude_shared_audio, excludeOverlappingText: h.exclude_overlapping_text, scope: h.scope };
}

function loadNamed<S extends z.ZodTypeAny, T>(dir: string, schema: S, convert: (v: z.infer<S>) => T): Record<string, T> {
  const out: Record<string, T> = {};
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));
  } catch {
    throw new InvalidArgumentError('config', `directory ${dir} cannot be read`);
  }
  for (const f of files.sort()) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(join(dir, f), 'utf8'));
    } catch (err) {
      throw new InvalidArgumentError('config', `${join(dir, f)}: ${describeError(err)}`);
    }
    const parsed = schema.safeParse(doc ?? {});
    if (!parsed.success) throw new InvalidArgumentError('config', describe(parsed.error, join(dir, f)));
    out[basename(f).replace(/\.ya?ml$/, '')] = convert(parsed.data as z.infer<S>);
  }
  return out;
}
