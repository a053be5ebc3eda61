/**
 * Deterministic, low-variance interleaving (Megatron's blending rule): the n-th draw goes to the
 * task maximizing target[t]·n − count[t], so after n draws every task's count stays within about
 * one example of n·target[t]. No randomness. Counts restart when the target changes, so the new
 * weights are tracked exactly from the step they apply at.
 *
 * Why blocks: the rule is an argmax over every live task per drawn example; at 80 tasks the
 * plain scan was a fifth of planning's CPU, at 10,000 most of it (13 µs a draw). The live tasks
 * are cut into blocks of similar targets (see compact); a block remembers its highest score when
 * last scanned, and since a score grows by at most the block's largest target per draw (counts
 * only go up between scans), that bounds it until the next scan: a block of small tasks stays
 * below the leaders for many draws. A draw scans the block with the highest bound, then only
 * blocks whose bound reaches the best score found: the rest hold no task that could win or tie.
 * The scores, and every pick with its tie-break (the lowest task id), are the plain scan's (a
 * differential test holds it to the scan); the bound carries a margin far above float rounding,
 * and an undo (a count going down) makes its block's bound unknown until it is scanned again.
 */
import { checkInt, checkInts, checkObject, refuse } from './state-check.js';

export interface SamplerState {
  /** Draws per task since the target last changed. */
  readonly counts: number[];
  readonly drawn: number;
}

/** Live tasks per block: about √tasks (as many bounds to update per draw as tasks in a block), at least 8; one block up to 16. */
function blockSize(live: number): number {
  return live <= 16 ? Math.max(1, live) : Math.max(8, Math.ceil(Math.sqrt(live)));
}

export class Sampler {
  private target: Float64Array;
  private live: Int32Array;
  private counts: Float64Array;
  private drawn: number;
  // Slot order (blocks, see compact): targets and counts side by side, each task's slot (−1: not live).
  private liveTarget = new Float64Array(0);
  private liveCount = new Float64Array(0);
  private livePos = new Int32Array(0);
  // Per block: the largest target, the highest score at the last scan (+Infinity: unknown) and the draw it was taken at.
  private blockRate = new Float64Array(0);
  private blockTop = new Float64Array(0);
  private blockAt = new Float64Array(0);
  private bound = new Float64Array(0);
  private block = 8;
  /** The task in each slot. */
  private slotTask = new Int32Array(0);
  /** At least the largest |count| of a live task: rounding in a score scales with it and with n. */
  private countScale = 0;

  constructor(target: Float64Array, state?: SamplerState) {
    this.target = target;
    this.live = Sampler.liveTasks(target);
    this.counts = new Float64Array(target.length);
    this.drawn = 0;
    // A state made by state() in this process is taken as is; a token's goes through restore().
    if (state) this.load(state.counts, state.drawn);
    else this.compact();
  }

  /** Restores a token's `sampler` section, checked: one count per task, and they add up to `drawn`. */
  restore(value: unknown, field: string): void {
    const s = checkObject(field, value);
    const counts = checkInts(`${field}.counts`, s.counts, this.target.length);
    const drawn = checkInt(`${field}.drawn`, s.drawn, 0, Number.MAX_SAFE_INTEGER);
    // Every draw, credit and undo moves one count and `drawn` together.
    const sum = counts.reduce((a, b) => a + b, 0);
    if (sum !== drawn) refuse(`${field}.drawn`, `is ${drawn} but the counts add up to ${sum}`);
    this.load(counts, drawn);
  }

  private load(counts: readonly number[], drawn: number): void {
    this.counts = new Float64Array(this.target.length);
    this.counts.set(counts.slice(0, this.target.length));
    this.drawn = drawn;
    this.compact();
  }

  private static liveTasks(target: Float64Array): Int32Array {
    const ids: number[] = [];
    target.forEach((p, t) => {
      if (p > 0) ids.push(t);
    });
    return Int32Array.from(ids);
  }

  /** The slot-order copies and fresh (unknown) block bounds. */
  private compact(): void {
    const { target, counts } = this;
    this.block = blockSize(this.live.length);
    // Blocks of tasks with similar targets (so a block of small ones has a bound that grows
    // slowly), each block in task order (so its scan meets equal scores in the plain scan's order).
    const byTarget = Array.from(this.live).sort((a, b) => target[b]! - target[a]! || a - b);
    for (let at = 0; at < byTarget.length; at += this.block) {
      const part = byTarget.slice(at, at + this.block).sort((a, b) => a - b);
      byTarget.splice(at, part.length, ...part);
    }
    const live = (this.slotTask = Int32Array.from(byTarget));
    this.livePos = new Int32Array(target.length).fill(-1);
    live.forEach((t, i) => (this.livePos[t] = i));
    this.liveTarget = Float64Array.from(live, (t) => target[t]!);
    this.liveCount = Float64Array.from(live, (t) => counts[t]!);
    const blocks = Math.ceil(live.length / this.block);
    this.blockRate = new Float64Array(blocks);
    for (let i = 0; i < live.length; i++) {
      const b = Math.floor(i / this.block);
      this.blockRate[b] = Math.max(this.blockRate[b]!, this.liveTarget[i]!);
    }
    this.blockTop = new Float64Array(blocks).fill(Infinity);
    this.blockAt = new Float64Array(blocks);
    this.bound = new Float64Array(blocks);
    this.countScale = this.liveCount.reduce((m, c) => Math.max(m, Math.abs(c)), 0);
  }

  get targets(): Float64Array {
    return this.target;
  }

  setTarget(target: Float64Array): void {
    this.target = target;
    this.live = Sampler.liveTasks(target);
    this.counts = new Float64Array(target.length);
    this.drawn = 0;
    this.compact();
  }

  next(): number {
    const n = this.drawn + 1;
    const { bound, blockTop, blockAt, blockRate } = this;
    const blocks = bound.length;
    let first = 0;
    for (let b = 0; b < blocks; b++) {
      // Scores only grow with n (an undo follows its own draw, so n never falls below a scan's; the max keeps the bound sound if it did).
      bound[b] = blockTop[b]! + Math.max(0, n - blockAt[b]!) * blockRate[b]!;
      if (bound[b]! > bound[first]!) first = b;
    }
    // Rounding in a score is below 2^-51 of n + |count|; a block is passed over only when its
    // bound plus far more than that stays under a score actually found.
    const margin = (Math.abs(n) + this.countScale) * 2 ** -40 + 2 ** -30;
    let bestScore = this.scan(first, n);
    let best = this.top;
    for (let b = 0; b < blocks; b++) {
      if (b === first || !(bound[b]! + margin >= bestScore)) continue;
      const score = this.scan(b, n);
      if (score > bestScore || (score === bestScore && this.slotTask[this.top]! < this.slotTask[best]!)) {
        bestScore = score;
        best = this.top;
      }
    }
    this.drawn = n;
    if (best < 0) return -1;
    this.liveCount[best]!++;
    this.countScale = Math.max(this.countScale, Math.abs(this.liveCount[best]!));
    const t = this.slotTask[best]!;
    this.counts[t] = (this.counts[t] ?? 0) + 1;
    return t;
  }

  /** The slot with the highest score in the block scanned last, the first among equals. */
  private top = -1;

  /** Scans block b at draw n: its highest score (remembered as its bound's base), the task in `top`. */
  private scan(b: number, n: number): number {
    const { liveTarget, liveCount } = this;
    const end = Math.min(liveTarget.length, (b + 1) * this.block);
    let best = -1;
    let bestScore = -Infinity;
    for (let i = b * this.block; i < end; i++) {
      const score = liveTarget[i]! * n - liveCount[i]!;
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    this.blockTop[b] = bestScore;
    this.blockAt[b] = n;
    this.top = best;
    return bestScore;
  }

  /** Adds `d` to task t's count (both copies); a count going down makes its block's bound unknown. */
  private add(t: number, d: number): void {
    this.counts[t] = (this.counts[t] ?? 0) + d;
    const i = this.livePos[t] ?? -1;
    if (i < 0) return;
    this.liveCount[i] = this.counts[t]!;
    this.countScale = Math.max(this.countScale, Math.abs(this.liveCount[i]!));
    if (d < 0) this.blockTop[Math.floor(i / this.block)] = Infinity;
  }

  /** Counts an example of task t that arrived another way (a later turn of a conversation). */
  credit(t: number): void {
    this.add(t, 1);
    this.drawn++;
  }

  /** Takes back the last draw of task t (it could not be served); the next draw picks t again. */
  undo(t: number): void {
    this.add(t, -1);
    this.drawn--;
  }

  state(): SamplerState {
    return { counts: Array.from(this.counts), drawn: this.drawn };
  }
}
