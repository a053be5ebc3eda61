import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVE_CLAIM } from '../../src/index/index-lock.js';

/**
 * Every file of an index directory and its bytes (base64), keyed by relative path. Two builds are
 * "identical" exactly when these are equal: the partitioned build and the cluster deploy files are
 * both held to the one-process build this way. Serve claims are left out: they name the servers
 * serving the directory (tests serve the shared sample index at the same time), not the index.
 */
export function indexTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith(SERVE_CLAIM)) continue;
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = readFileSync(join(d, e.name)).toString('base64');
    }
  };
  walk(dir, '');
  return out;
}
