/**
 * flanstream — TypeScript client for the flanstream training-batch server (docs/service.md).
 *
 *   const info = await new FlanStreamClient('localhost:50051').corpusInfo();
 *   const ds = new FlanStreamDataset('localhost:50051', { split: 'train', batchSize: 8, seqLen: 4096,
 *     packing: 'packed', mixture: { weights: { speech: 0.5, music: 0.25, audio: 0.25 } }, seed: 0 });
 *   for await (const batch of ds) { ... }
 *   const state = ds.stateDict(); ds.loadStateDict(state);
 *   ds.updateMixture({ speech: 0.3, music: 0.4, audio: 0.3 }, 1000);
 */
export { FlanStreamClient, FlanStreamDataset, type DatasetOptions, type DatasetState } from './flanstream-client.js';
export { FlanStreamError, toFlanStreamError } from './errors.js';
export type { ClientOptions, Tls, BatchCall } from './service-client.js';
export type {
  HeldoutArg,
  HeldoutOptions,
  MixtureArg,
  MixtureOptions,
  Overlong,
  Packing,
  PendingUpdate,
  Scope,
  Shuffle,
  Split,
  StreamRequest,
  Within,
} from './spec.js';
export { DEFAULT_RETRY, StreamConnection, type Item, type RetryPolicy } from './stream-connection.js';
export { BatchDecoder, denseArrays, IGNORE_INDEX, int32s } from './wire-decode.js';
export type * from './wire-types.js';
