/**
 * The built CLI, as tests start it in a child process: `node dist/cli.js <command> …`.
 * The test run's global setup builds dist/ when src/ is newer, so the children run the sources
 * under test; starting from dist/ costs a child about half the CPU of `node --import tsx src/cli.ts`
 * (no TypeScript loader in the child or in its worker threads).
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'cli.js');

/** The file: URL of a built module, `distUrl('index/index-lock.js')`, for `node -e` children. */
export const distUrl = (path: string): string => pathToFileURL(join(ROOT, 'dist', path)).href;
