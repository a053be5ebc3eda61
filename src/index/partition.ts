import { InvalidArgumentError } from '../errors.js';

/** Part I of N of a partitioned index build; I counts from 0 (Kubernetes' JOB_COMPLETION_INDEX does). */
export interface PartId {
  readonly index: number;
  readonly count: number;
}

/** Parses `I/N` (0 ≤ I < N). */
export function parsePart(text: string): PartId {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || !Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index >= count) {
    throw new InvalidArgumentError(
      '--part',
      `expected I/N with 0 <= I < N (part I of N, counted from 0), got "${text}"`,
    );
  }
  return { index, count };
}

export function partName(p: PartId): string {
  return `${p.index}/${p.count}`;
}

/**
 * Which part builds each JSONL file: every process of a partitioned build computes this from the
 * same listing, so the parts agree without talking to each other. Largest files first, each to
 * the part with fewest bytes so far (ties: lowest part, then path order): the parts' byte totals
 * differ by at most one file. Returns the part of each entry of `files`, in their order.
 */
export function assignParts(
  files: readonly { readonly source: string; readonly bytes: number }[],
  count: number,
): number[] {
  const order = files
    .map((_, i) => i)
    .sort((a, b) => files[b]!.bytes - files[a]!.bytes || (files[a]!.source < files[b]!.source ? -1 : 1));
  const load = new Array<number>(count).fill(0);
  const part = new Array<number>(files.length).fill(0);
  for (const i of order) {
    let best = 0;
    for (let p = 1; p < count; p++) if (load[p]! < load[best]!) best = p;
    part[i] = best;
    load[best] = load[best]! + files[i]!.bytes;
  }
  return part;
}
