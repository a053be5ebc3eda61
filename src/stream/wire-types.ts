import type { Batch__Output } from '../../proto/generated/flanstream/v1/Batch.js';
import type { EvalExample__Output } from '../../proto/generated/flanstream/v1/EvalExample.js';
import type { Stats__Output } from '../../proto/generated/flanstream/v1/Stats.js';
import type { StreamEnd__Output } from '../../proto/generated/flanstream/v1/StreamEnd.js';

/**
 * What the stream layer hands the server: the proto messages themselves, in the shape
 * @grpc/proto-loader gives them (camelCase fields, 64-bit integers as numbers, defaults filled
 * in). The fields are not restated here: they come from the types generated from the .proto
 * (proto/generated, `npm run gen:proto-types`); this file only narrows them and adds what the
 * server keeps for itself. Type-only: no gRPC import reaches this layer.
 */
export type WireStats = Stats__Output;

export type WireExample = EvalExample__Output;

export interface WireBatch extends Batch__Output {
  /** Always set on the batches the server builds. */
  stats: WireStats;
  /** Codec frames per segment (not sent: /metrics turns them into audio seconds). */
  segAudioFrames: number[];
}

export interface WireEnd extends StreamEnd__Output {
  reason: 'complete' | 'max_batches' | 'shutdown';
}

export type WireResponse = { batch: WireBatch } | { end: WireEnd };
