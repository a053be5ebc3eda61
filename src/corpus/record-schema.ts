import { z } from 'zod';

export const DOMAINS = ['speech', 'music', 'audio'] as const;
export type DomainName = (typeof DOMAINS)[number];
export const SPLITS = ['train', 'dev', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

const nonEmptyStrings = z.array(z.string().min(1)).min(1);

/** One Audio-FLAN record (paper appendix A.3; CONTRACT §2). Unknown extra fields are ignored. */
export const recordSchema = z.object({
  instruction: z.string(),
  input: z.string(),
  output: z.string(),
  uuid: z.string().min(1),
  split: z.array(z.enum(SPLITS)).min(1),
  task_type: z.object({
    major: nonEmptyStrings,
    minor: nonEmptyStrings,
    'U/G': z.array(z.enum(['understanding', 'generation'])).min(1),
    unseen: z.boolean(),
  }),
  domain: z.string(),
  source: z.array(z.string()),
  other: z.record(z.unknown()).nullable(),
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
