import { DOMAINS } from '../corpus/record-schema.js';
import { InvalidArgumentError } from '../errors.js';
import type { SegmentLayout } from '../pack/segment-layout.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import { buildBatch, buildExamples } from './batch-builder.js';
import type { EvalItems } from './eval-items.js';
import { EvalPlanner, type EvalState } from './eval-planner.js';
import type { PlanCache, PlannedStep } from './plan-cache.js';
import { encodeToken } from './resume-token.js';
import { specHash, type MixtureUpdate, type Placement, type StreamSpec } from './stream-spec.js';
import { checksum } from '../util/hash.js';
import type { TrainPlanner, TrainState } from './train-planner.js';
import type { WireEnd, WireResponse, WireStats } from './wire-types.js';

export type Planner = { kind: 'train'; planner: TrainPlanner } | { kind: 'eval'; planner: EvalPlanner; items: EvalItems };

export interface SessionInit {
  readonly spec: StreamSpec;
  readonly placement: Placement;
  readonly heldout: ResolvedHeldout;
  readonly indexFingerprint: string;
  /** server.token_key: tokens are HMAC-signed with it ('' = unsigned). */
  readonly tokenKey: string;
  readonly layout: SegmentLayout;
  readonly plan: Planner;
  /** The next global step to build. */
  readonly step: number;
  /** Train steps shared with the job's other rank streams on this server (see plan-cache.ts). */
  readonly shared?: {
    readonly cache: PlanCache;
    /** A planner in the state a token of this stream describes. */
    readonly restore: (token: Buffer) => TrainPlanner;
  };
}

/**
 * One client's stream: plans each global step (world_size × batch_size rows), materializes only
 * this rank's rows, and attaches the resume token that continues right after the batch.
 * Building is synchronous and on demand, so a slow client holds at most what gRPC buffers.
 */
export class StreamSession {
  readonly spec: StreamSpec;
  readonly placement: Placement;
  readonly heldout: ResolvedHeldout;
  /** Hashed once: every batch's token carries it, and the spec never changes within a stream. */
  private readonly specHash: string;
  private readonly init: SessionInit;
  private step: number;
  private sent = 0;
  private finished = false;
  private lastToken: Buffer;
  private readonly taskDomain: Int32Array;
  /** The plan cache, for a train stream of a multi-rank job (a single rank has no one to share with). */
  private readonly plans: SessionInit['shared'];
  /** Digest of the state the next step is planned from: the plan cache's key (with `plans` only). */
  private stateKey = '';
  /** The planner lags behind `lastToken` after steps taken from the plan cache. */
  private plannerStale = false;

  constructor(init: SessionInit) {
    this.init = init;
    this.spec = init.spec;
    this.placement = init.placement;
    this.heldout = init.heldout;
    this.specHash = specHash(init.spec);
    this.step = init.step;
    this.taskDomain = Int32Array.from(init.layout.table.reader.tasks.map((t) => DOMAINS.indexOf(t.domain as (typeof DOMAINS)[number])));
    this.lastToken = this.token();
    this.plans = init.plan.kind === 'train' && init.placement.worldSize > 1 ? init.shared : undefined;
    if (this.plans) this.stateKey = checksum(this.lastToken);
  }

  get nextStep(): number {
    return this.step;
  }

  get done(): boolean {
    return this.finished;
  }

  /** The token of the last batch sent (or of the start), for a client being drained. */
  get resumeToken(): Buffer {
    return this.lastToken;
  }

  addUpdate(u: MixtureUpdate): void {
    // A client error, not an internal one: it must reach the client as INVALID_ARGUMENT.
    if (this.init.plan.kind !== 'train') throw new InvalidArgumentError('mixture_update', `mixture updates apply to split "train" only; the ${this.spec.split} split is served whole and in order`);
    this.trainPlanner().addUpdate(u, this.step);
    // The pending update is part of the state now: only streams that queued the same update at
    // the same step share the steps from here on.
    if (this.plans) this.stateKey = checksum(this.token());
  }

  /** The train planner, first brought up to `lastToken` if steps came from the plan cache. */
  private trainPlanner(): TrainPlanner {
    const plan = this.init.plan as Extract<Planner, { kind: 'train' }>;
    if (this.plannerStale && this.plans) {
      plan.planner = this.plans.restore(this.lastToken);
      this.plannerStale = false;
    }
    return plan.planner;
  }

  private token(): Buffer {
    const { plan } = this.init;
    const state: TrainState | EvalState = plan.planner.state();
    return encodeToken({
      index: this.init.indexFingerprint,
      heldout: this.heldout.fingerprint,
      specHash: this.specHash,
      spec: this.spec,
      step: this.step,
      worldSize: this.placement.worldSize,
      state,
    }, this.init.tokenKey);
  }

  /** This step for all ranks: from the plan cache when another rank planned it, else planned here. */
  private planStep(): PlannedStep {
    const rows = this.placement.worldSize * this.spec.batchSize;
    const { plan } = this.init;
    if (plan.kind === 'eval') {
      const planned = plan.planner.planStep(rows);
      this.step++;
      return { rows: planned, token: this.token(), stats: this.stats() };
    }
    const cached = this.plans?.cache.take(this.stateKey);
    if (cached) {
      this.step++;
      this.plannerStale = true;
      return cached;
    }
    const planned = this.trainPlanner().planStep(this.step, rows);
    this.step++;
    const step = { rows: planned, token: this.token(), stats: this.stats() };
    this.plans?.cache.put(this.stateKey, step, this.placement.worldSize);
    return step;
  }

  /** The next message, or undefined once the stream has ended. */
  next(): WireResponse | undefined {
    if (this.finished) return undefined;
    const { plan } = this.init;
    if (this.placement.maxBatches > 0 && this.sent >= this.placement.maxBatches) return this.end('max_batches');
    if (plan.kind === 'eval' && plan.planner.done) return this.end('complete');
    const step = this.step;
    const planned = this.planStep();
    const { rank } = this.placement;
    const { batchSize } = this.spec;
    const mine = planned.rows.slice(rank * batchSize, (rank + 1) * batchSize);
    const layout = this.init.layout;
    const body = buildBatch(layout, this.spec.packing === 'examples' ? [] : mine, this.taskDomain);
    this.sent++;
    this.lastToken = planned.token;
    if (this.plans) this.stateKey = checksum(planned.token);
    return {
      batch: {
        ...body,
        step,
        rank,
        worldSize: this.placement.worldSize,
        batchSize: mine.length,
        seqLen: this.spec.seqLen,
        resumeToken: this.lastToken,
        stats: planned.stats,
        heldoutFingerprint: this.heldout.fingerprint,
        examples: this.spec.packing === 'examples' ? buildExamples(layout, mine) : [],
      },
    };
  }

  /** Ends the stream; `shutdown` hands the client the token of the last batch it was sent. */
  end(reason: WireEnd['reason']): WireResponse {
    this.finished = true;
    const tasks = this.init.layout.table.reader.tasks.length;
    const { plan } = this.init;
    const replayed = plan.kind === 'eval' ? this.replay(plan.items) : undefined;
    const mine = replayed?.counts ?? Array.from({ length: tasks }, () => 0);
    const totals = plan.kind === 'eval' ? plan.items.perTask : Array.from({ length: tasks }, () => 0);
    return {
      end: {
        taskExamples: mine,
        totalTaskExamples: [...totals],
        examples: mine.reduce((a, b) => a + b, 0),
        totalExamples: totals.reduce((a, b) => a + b, 0),
        resumeToken: this.lastToken,
        reason,
        taskDropped: replayed?.dropped ?? Array.from({ length: tasks }, () => 0),
      },
    };
  }

  /** Examples this rank is given over the whole evaluation stream, and the set's dropped items, replayed from its start. */
  private replay(items: EvalItems): { counts: number[]; dropped: number[] } {
    const replay = new EvalPlanner(items, this.init.layout, this.spec);
    const counts = items.perTask.map(() => 0);
    const { rank, worldSize } = this.placement;
    const B = this.spec.batchSize;
    while (!replay.done) {
      const rows = replay.planStep(worldSize * B).slice(rank * B, (rank + 1) * B);
      for (const row of rows) for (const seg of row) for (const t of seg.turns) counts[t.loc.task] = (counts[t.loc.task] ?? 0) + 1;
    }
    return { counts, dropped: replay.totals.dropped };
  }

  private stats(): WireStats {
    const { plan } = this.init;
    const totals = plan.planner.totals;
    const target = plan.kind === 'train' ? Array.from(plan.planner.targets) : totals.examples.map(() => 0);
    const domainExamples = DOMAINS.map(() => 0);
    const domainTarget = DOMAINS.map(() => 0);
    totals.examples.forEach((n, t) => {
      const d = this.taskDomain[t] ?? 0;
      domainExamples[d] = (domainExamples[d] ?? 0) + n;
      domainTarget[d] = (domainTarget[d] ?? 0) + (target[t] ?? 0);
    });
    // Copies: the planner keeps counting into its arrays while gRPC may still hold this batch
    // unserialized in its write buffer.
    return {
      taskExamples: [...totals.examples],
      taskTextTokens: [...totals.textTokens],
      taskAudioTokens: [...totals.audioTokens],
      taskTarget: target,
      domainExamples,
      domainTarget,
      paddingTokens: totals.padding,
      dropped: totals.dropped.reduce((a, b) => a + b, 0),
      truncated: totals.truncated.reduce((a, b) => a + b, 0),
      taskDropped: totals.dropped,
      taskTruncated: totals.truncated,
    };
  }
}
