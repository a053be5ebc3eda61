/**
 * Deterministic, low-variance interleaving (Megatron's blending rule): the n-th draw goes to the
 * task maximizing target[t]·n − count[t], so after n draws every task's count stays within about
 * one example of n·target[t]. No randomness; O(T) per draw. Counts restart when the target
 * changes, so the new weights are tracked exactly from the step they apply at.
 */
export interface SamplerState {
  /** Draws per task since the target last changed. */
  readonly counts: number[];
  readonly drawn: number;
}

export class Sampler {
  private target: Float64Array;
  private live: Int32Array;
  private counts: Float64Array;
  private drawn: number;

  constructor(target: Float64Array, state?: SamplerState) {
    this.target = target;
    this.live = Sampler.liveTasks(target);
    this.counts = new Float64Array(target.length);
    this.drawn = 0;
    if (state) {
      this.counts.set(state.counts.slice(0, target.length));
      this.drawn = state.drawn;
    }
  }

  private static liveTasks(target: Float64Array): Int32Array {
    const ids: number[] = [];
    target.forEach((p, t) => {
      if (p > 0) ids.push(t);
    });
    return Int32Array.from(ids);
  }

  get targets(): Float64Array {
    return this.target;
  }

  setTarget(target: Float64Array): void {
    this.target = target;
    this.live = Sampler.liveTasks(target);
    this.counts = new Float64Array(target.length);
    this.drawn = 0;
  }

  next(): number {
    const n = this.drawn + 1;
    let best = -1;
    let bestScore = -Infinity;
    const { live, target, counts } = this;
    for (let i = 0; i < live.length; i++) {
      const t = live[i] ?? 0;
      const score = (target[t] ?? 0) * n - (counts[t] ?? 0);
      if (score > bestScore) {
        bestScore = score;
        best = t;
      }
    }
    counts[best] = (counts[best] ?? 0) + 1;
    this.drawn = n;
    return best;
  }

  /** Counts an example of task t that arrived another way (a later turn of a conversation). */
  credit(t: number): void {
    this.counts[t] = (this.counts[t] ?? 0) + 1;
    this.drawn++;
  }

  /** Takes back the last draw of task t (it could not be served); the next draw picks t again. */
  undo(t: number): void {
    this.counts[t] = (this.counts[t] ?? 0) - 1;
    this.drawn--;
  }

  state(): SamplerState {
    return { counts: Array.from(this.counts), drawn: this.drawn };
  }
}
