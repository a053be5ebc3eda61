import { InvalidArgumentError } from '../errors.js';

/**
 * Checks for the sections of a resume token's state, used by each section's owner when it
 * restores one (the sampler, the task walker, the pending units, the share window, the policy
 * runner, the planners). A token is client input: unsigned ones can be re-encoded at will, and
 * even a signed one may come from an older server, so a bad field is refused with
 * INVALID_ARGUMENT naming it (`resume.token.state.walker.cursors[3]`). Why here, in the lowest
 * layer that owns such state: every owner above it checks with the same words.
 */
export const STATE_FIELD = 'resume.token.state';

export function refuse(field: string, message: string): never {
  throw new InvalidArgumentError(field, message);
}

export function describe(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'string') return `"${v.slice(0, 32)}"`;
  return Array.isArray(v) ? `a list of ${v.length}` : typeof v;
}

export function checkInt(field: string, v: unknown, min: number, max: number): number {
  if (!(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max))
    refuse(field, `must be an integer in [${min}, ${max}], got ${describe(v)}`);
  return v as number;
}

/** A list of exactly `n` integers (one per task), element i in [0, max(i)]. */
export function checkInts(
  field: string,
  xs: unknown,
  n: number,
  max: (i: number) => number = () => Number.MAX_SAFE_INTEGER,
): number[] {
  const list = checkList(field, xs);
  if (list.length !== n) refuse(field, `has ${list.length} entries; this index has ${n} tasks`);
  for (let i = 0; i < n; i++) checkInt(`${field}[${i}]`, list[i], 0, max(i));
  return list as number[];
}

export function checkList(field: string, v: unknown): unknown[] {
  if (!Array.isArray(v)) refuse(field, `must be a list, got ${describe(v)}`);
  return v;
}

export function checkObject(field: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) refuse(field, `must be an object, got ${describe(v)}`);
  return v as Record<string, unknown>;
}
