import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every file of an index directory and its bytes (base64), keyed by relative path. Two builds are
 * "identical" exactly when these are equal: the partitioned build and the cluster deploy files are
 * both held to the one-process build this way.
 */
export function indexTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = readFileSync(join(d, e.name)).toString('base64');
    }
  };
  walk(dir, '');
  return out;
}
