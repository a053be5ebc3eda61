import { SPLITS, describeSchemaError, recordSchema, type FlanRecord, type SplitName } from './record-schema.js';

/**
 * Validating a parsed JSONL record against `recordSchema`, fast. zod allocates a parse context,
 * status and copies per field: it was the indexer's largest per-record cost (about 40 µs a record,
 * most of the build's garbage collection). A record of the ordinary shape is checked and
 * normalized here by hand, producing exactly the value zod would; anything else (a missing or
 * mistyped field, an unusual value) goes through zod itself, so every accepted value and every
 * error message stays zod's. test/corpus/record-parse.test.ts holds the two to equality.
 */
export type ParsedRecord =
  { readonly ok: true; readonly rec: FlanRecord } | { readonly ok: false; readonly detail: string };

export function parseRecord(json: unknown): ParsedRecord {
  const fast = ordinaryRecord(json);
  if (fast !== undefined) return { ok: true, rec: fast };
  const parsed = recordSchema.safeParse(json);
  return parsed.success ? { ok: true, rec: parsed.data } : { ok: false, detail: describeSchemaError(parsed.error) };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: Obj, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** `stringOrList(item)`: a string is a one-element list; a non-empty array of valid items is copied. */
function list<T extends string>(v: unknown, ok: (s: string) => s is T): [T, ...T[]] | undefined {
  if (typeof v === 'string') return ok(v) ? [v] : undefined;
  if (!Array.isArray(v) || v.length === 0) return undefined;
  for (const s of v) if (typeof s !== 'string' || !ok(s)) return undefined;
  return [...(v as T[])] as [T, ...T[]];
}
const nonEmpty = (s: string): s is string => s.length > 0;
const isSplit = (s: string): s is SplitName => (SPLITS as readonly string[]).includes(s);
const isUg = (s: string): s is 'understanding' | 'generation' => s === 'understanding' || s === 'generation';

/** `z.number().finite().nullish()` for a key that is present: a finite number or null. */
const seconds = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isFinite(v));

/**
 * The record as zod's output (known keys in schema order, optional keys only where present,
 * unknown keys dropped), or undefined when it is not of the ordinary shape and zod must decide.
 */
export function ordinaryRecord(v: unknown): FlanRecord | undefined {
  if (!isObj(v)) return undefined;
  const { instruction, input, output, uuid, domain } = v;
  if (
    typeof instruction !== 'string' ||
    typeof input !== 'string' ||
    typeof output !== 'string' ||
    typeof uuid !== 'string' ||
    uuid.length === 0 ||
    typeof domain !== 'string'
  )
    return undefined;
  const split = list(v.split, isSplit);
  const tt = v.task_type;
  if (split === undefined || !isObj(tt)) return undefined;
  const major = list(tt.major, nonEmpty);
  const minor = list(tt.minor, nonEmpty);
  const ug = list(tt['U/G'], isUg);
  if (major === undefined || minor === undefined || ug === undefined) return undefined;
  // zod's default applies to an absent or undefined `unseen`; any other non-boolean is its error to report.
  if (tt.unseen !== undefined && typeof tt.unseen !== 'boolean') return undefined;
  let source: string[];
  if (typeof v.source === 'string') source = [v.source];
  else if (Array.isArray(v.source) && v.source.every((s) => typeof s === 'string'))
    source = [...(v.source as string[])];
  else return undefined;
  const rec: Obj = {
    instruction,
    input,
    output,
    uuid,
    split,
    task_type: { major, minor, 'U/G': ug, unseen: tt.unseen ?? false },
    domain,
    source,
  };
  if (has(v, 'other')) {
    const other = v.other;
    // A record of unknowns is copied key by key; a "__proto__" key is zod's to handle.
    if (other === null || other === undefined) rec.other = other;
    else if (isObj(other) && Object.getPrototypeOf(other) === Object.prototype && !has(other, '__proto__'))
      rec.other = { ...other };
    else return undefined;
  }
  for (const k of ['audio_start', 'audio_end'] as const) {
    if (!has(v, k)) continue;
    const s = v[k];
    if (s !== undefined && !seconds(s)) return undefined;
    rec[k] = s;
  }
  return rec as FlanRecord;
}
