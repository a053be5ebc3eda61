import { z } from 'zod';

export const DOMAINS = ['speech', 'music', 'audio'] as const;
export type DomainName = (typeof DOMAINS)[number];
export const SPLITS = ['train', 'dev', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

/**
 * The paper's appendix shows list-valued fields; the published release writes the same fields as
 * plain strings, and both forms occur in one file. A string is read as a one-element list, so the
 * rest of the indexer sees one shape.
 */
function stringOrList<T extends z.ZodTypeAny>(
  item: T,
): z.ZodEffects<z.ZodArray<T, 'atleastone'>, [z.output<T>, ...z.output<T>[]], unknown> {
  return z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(item).nonempty());
}

const nonEmptyStrings = stringOrList(z.string().min(1));
/** Seconds into the clip; null is the same as absent. */
const seconds = z.number().finite().nullish();

/** One Audio-FLAN record (paper appendix A.3; docs/corpus.md). Unknown extra fields are ignored. */
export const recordSchema = z.object({
  instruction: z.string(),
  input: z.string(),
  output: z.string(),
  uuid: z.string().min(1),
  split: stringOrList(z.enum(SPLITS)),
  task_type: z.object({
    major: nonEmptyStrings,
    minor: nonEmptyStrings,
    'U/G': stringOrList(z.enum(['understanding', 'generation'])),
    // Absent in some release records: a task is unseen only where a record says so.
    unseen: z.boolean().optional().default(false),
  }),
  domain: z.string(),
  source: z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(z.string())),
  other: z.record(z.unknown()).nullish(),
  /** The clip's time window (CMI-bench schema): only these seconds of every referenced clip are served. */
  audio_start: seconds,
  audio_end: seconds,
});
export type FlanRecord = z.infer<typeof recordSchema>;

/** A readable one-line description of the first schema problems, e.g. "task_type.minor: Required". */
export function describeSchemaError(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(record)'}: ${i.message}`)
    .join('; ');
}

export function isDomain(d: string): d is DomainName {
  return (DOMAINS as readonly string[]).includes(d);
}

export function taskPath(domain: string, major: string, minor: string): string {
  return `${domain}/${major}/${minor}`;
}
