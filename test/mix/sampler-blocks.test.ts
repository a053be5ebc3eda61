import { describe, expect, it } from 'vitest';
import { Sampler, type SamplerState } from '../../src/mix/sampler.js';

/**
 * The sampler skips blocks of tasks whose score bound cannot reach the best score found
 * (sampler.ts). Streams must not change by a single draw: these tests hold it to Megatron's rule
 * as written, the plain scan over every live task in order, through draws, credits, undos,
 * target changes and restored states, on targets with many ties and very skewed ones.
 */
class ScanSampler {
  counts: Float64Array;
  drawn: number;
  constructor(
    public target: Float64Array,
    state?: SamplerState,
  ) {
    this.counts = new Float64Array(target.length);
    this.drawn = state?.drawn ?? 0;
    if (state) this.counts.set(state.counts.slice(0, target.length));
  }
  next(): number {
    const n = this.drawn + 1;
    let best = -1;
    let bestScore = -Infinity;
    for (let t = 0; t < this.target.length; t++) {
      if (!(this.target[t]! > 0)) continue;
      const score = this.target[t]! * n - this.counts[t]!;
      if (score > bestScore) [bestScore, best] = [score, t];
    }
    if (best >= 0) this.counts[best]!++;
    this.drawn = n;
    return best;
  }
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0), x / 2 ** 32);
}

/** Targets of T tasks: equal (ties everywhere), a few dominant ones over many tiny ones, or random with some zeros. */
function targets(kind: string, T: number, r: () => number): Float64Array {
  const w = Array.from({ length: T }, (_, t): number => {
    if (kind === 'equal') return 1;
    if (kind === 'skewed') return t % 11 === 3 ? 1e7 * (1 + r()) : 10 ** (2 + 3 * r());
    return r() < 0.2 ? 0 : Math.floor(r() * 5) + 1;
  });
  if (!w.some((x) => x > 0)) w[0] = 1;
  const sum = w.reduce((a, b) => a + b, 0);
  return Float64Array.from(w, (x) => x / sum);
}

describe('Sampler with block bounds', () => {
  it.each([1, 2, 3, 9, 80, 128, 129, 300, 2000])(
    "%i tasks: every draw is the plain scan's, through credits, undos, new targets and restores",
    (T) => {
      for (const kind of ['equal', 'skewed', 'random']) {
        const r = rng(T * 31 + kind.length);
        let target = targets(kind, T, r);
        let fast = new Sampler(target);
        let scan = new ScanSampler(target);
        for (let k = 0; k < 6000; k++) {
          const op = r();
          if (op < 0.05) {
            // A later turn of a conversation counts toward a live task.
            const live = [...target.keys()].filter((t) => target[t]! > 0);
            const t = live[Math.floor(r() * live.length)]!;
            fast.credit(t);
            scan.counts[t]!++;
            scan.drawn++;
          } else if (op < 0.1) {
            // A drawn record that cannot be served: taken back, drawn again.
            const t = fast.next();
            expect(scan.next()).toBe(t);
            fast.undo(t);
            scan.counts[t]!--;
            scan.drawn--;
          } else if (op < 0.102) {
            target = targets(kind, T, r);
            fast.setTarget(target);
            scan = new ScanSampler(target);
          } else if (op < 0.105) {
            // A resume token: the state restored into a fresh sampler.
            fast = new Sampler(target, fast.state());
          } else {
            expect(fast.next(), `${kind} draw ${k}`).toBe(scan.next());
          }
        }
        expect(fast.state()).toEqual({ counts: Array.from(scan.counts), drawn: scan.drawn });
      }
    },
  );

  it('a restored state far from the rule (counts well off n·target, n large) still draws as the scan does', () => {
    const T = 400;
    const r = rng(5);
    const target = targets('skewed', T, r);
    const state = {
      counts: Array.from({ length: T }, (_, t) => Math.floor(r() * 1e6) + (t === 7 ? 5e9 : 0)),
      drawn: 2 ** 40 + 3,
    };
    const fast = new Sampler(target, state);
    const scan = new ScanSampler(target, state);
    for (let k = 0; k < 3000; k++) expect(fast.next(), `draw ${k}`).toBe(scan.next());
  });
});
