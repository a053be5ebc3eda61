/** Why a record or file could not be used. Every reason is counted; nothing vanishes silently. */
export const QUARANTINE_REASONS = [
  'unreadable_file',
  'not_regular_file',
  'empty_file',
  'truncated_gzip',
  'invalid_utf8',
  'nul_byte',
  'line_too_long',
  'truncated_line',
  'invalid_json',
  'schema',
  'unknown_domain',
  'audio_id_unresolved',
  'path_escape',
  'npy_missing',
  'npy_malformed',
  'duplicate_uuid',
  'absolute_path',
  'codebooks_mismatch',
  'audio_window',
] as const;
export type QuarantineReason = (typeof QUARANTINE_REASONS)[number];

export interface QuarantineEntry {
  /** Path relative to the corpus root. */
  readonly file: string;
  /** 1-based line number; 0 for a problem with the whole file. */
  readonly line: number;
  readonly reason: QuarantineReason;
  readonly detail: string;
}

export function countByReason(entries: Iterable<QuarantineEntry>): Partial<Record<QuarantineReason, number>> {
  const out: Partial<Record<QuarantineReason, number>> = {};
  for (const e of entries) out[e.reason] = (out[e.reason] ?? 0) + 1;
  return out;
}
