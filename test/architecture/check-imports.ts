import { fileURLToPath } from 'node:url';
import { importProblems } from './import-graph.js';
import { KNOWN_EDGES, LAYER_RANKS } from './layers.js';

/**
 * `npm run deps`: the import rule of src/ as a command, so `npm run check` fails in a second on a
 * cycle or an upward import instead of after the whole suite (layers.test.ts runs it in `npm test`).
 */
const root = fileURLToPath(new URL('../../src', import.meta.url));
const p = importProblems(root, LAYER_RANKS, KNOWN_EDGES);
for (const c of p.cycles) console.error(`import cycle: ${c.join(' → ')}`);
for (const u of p.upward) console.error(`upward import: ${u}`);
for (const f of p.unknownLayers)
  console.error(`no layer for ${f}: add its folder to LAYER_RANKS in test/architecture/layers.ts`);
for (const s of p.stale) console.log(`note: known edge ${s} is gone; delete it from KNOWN_EDGES`);
const bad = p.cycles.length + p.upward.length + p.unknownLayers.length;
console.log(bad === 0 ? 'imports: no cycle, no upward import' : `imports: ${bad} problem(s)`);
process.exitCode = bad === 0 ? 0 : 1;
