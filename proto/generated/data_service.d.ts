import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AudioSpec as _flanstream_v1_AudioSpec, AudioSpec__Output as _flanstream_v1_AudioSpec__Output } from './flanstream/v1/AudioSpec.js';
import type { Batch as _flanstream_v1_Batch, Batch__Output as _flanstream_v1_Batch__Output } from './flanstream/v1/Batch.js';
import type { CorpusInfo as _flanstream_v1_CorpusInfo, CorpusInfo__Output as _flanstream_v1_CorpusInfo__Output } from './flanstream/v1/CorpusInfo.js';
import type { DataServiceClient as _flanstream_v1_DataServiceClient, DataServiceDefinition as _flanstream_v1_DataServiceDefinition } from './flanstream/v1/DataService.js';
import type { DatasetInfo as _flanstream_v1_DatasetInfo, DatasetInfo__Output as _flanstream_v1_DatasetInfo__Output } from './flanstream/v1/DatasetInfo.js';
import type { DatasetTaskCount as _flanstream_v1_DatasetTaskCount, DatasetTaskCount__Output as _flanstream_v1_DatasetTaskCount__Output } from './flanstream/v1/DatasetTaskCount.js';
import type { EvalExample as _flanstream_v1_EvalExample, EvalExample__Output as _flanstream_v1_EvalExample__Output } from './flanstream/v1/EvalExample.js';
import type { FilterCounts as _flanstream_v1_FilterCounts, FilterCounts__Output as _flanstream_v1_FilterCounts__Output } from './flanstream/v1/FilterCounts.js';
import type { FilterTaskCount as _flanstream_v1_FilterTaskCount, FilterTaskCount__Output as _flanstream_v1_FilterTaskCount__Output } from './flanstream/v1/FilterTaskCount.js';
import type { FilterText as _flanstream_v1_FilterText, FilterText__Output as _flanstream_v1_FilterText__Output } from './flanstream/v1/FilterText.js';
import type { GetCorpusInfoRequest as _flanstream_v1_GetCorpusInfoRequest, GetCorpusInfoRequest__Output as _flanstream_v1_GetCorpusInfoRequest__Output } from './flanstream/v1/GetCorpusInfoRequest.js';
import type { GuardRemoval as _flanstream_v1_GuardRemoval, GuardRemoval__Output as _flanstream_v1_GuardRemoval__Output } from './flanstream/v1/GuardRemoval.js';
import type { Heldout as _flanstream_v1_Heldout, Heldout__Output as _flanstream_v1_Heldout__Output } from './flanstream/v1/Heldout.js';
import type { HeldoutSetInfo as _flanstream_v1_HeldoutSetInfo, HeldoutSetInfo__Output as _flanstream_v1_HeldoutSetInfo__Output } from './flanstream/v1/HeldoutSetInfo.js';
import type { LossReport as _flanstream_v1_LossReport, LossReport__Output as _flanstream_v1_LossReport__Output } from './flanstream/v1/LossReport.js';
import type { Mixture as _flanstream_v1_Mixture, Mixture__Output as _flanstream_v1_Mixture__Output } from './flanstream/v1/Mixture.js';
import type { MixtureUpdate as _flanstream_v1_MixtureUpdate, MixtureUpdate__Output as _flanstream_v1_MixtureUpdate__Output } from './flanstream/v1/MixtureUpdate.js';
import type { Resume as _flanstream_v1_Resume, Resume__Output as _flanstream_v1_Resume__Output } from './flanstream/v1/Resume.js';
import type { SpecChoices as _flanstream_v1_SpecChoices, SpecChoices__Output as _flanstream_v1_SpecChoices__Output } from './flanstream/v1/SpecChoices.js';
import type { Stats as _flanstream_v1_Stats, Stats__Output as _flanstream_v1_Stats__Output } from './flanstream/v1/Stats.js';
import type { StreamEnd as _flanstream_v1_StreamEnd, StreamEnd__Output as _flanstream_v1_StreamEnd__Output } from './flanstream/v1/StreamEnd.js';
import type { StreamRequest as _flanstream_v1_StreamRequest, StreamRequest__Output as _flanstream_v1_StreamRequest__Output } from './flanstream/v1/StreamRequest.js';
import type { StreamResponse as _flanstream_v1_StreamResponse, StreamResponse__Output as _flanstream_v1_StreamResponse__Output } from './flanstream/v1/StreamResponse.js';
import type { StreamSpec as _flanstream_v1_StreamSpec, StreamSpec__Output as _flanstream_v1_StreamSpec__Output } from './flanstream/v1/StreamSpec.js';
import type { TaskInfo as _flanstream_v1_TaskInfo, TaskInfo__Output as _flanstream_v1_TaskInfo__Output } from './flanstream/v1/TaskInfo.js';
import type { TaskLoss as _flanstream_v1_TaskLoss, TaskLoss__Output as _flanstream_v1_TaskLoss__Output } from './flanstream/v1/TaskLoss.js';
import type { UnavailableMixture as _flanstream_v1_UnavailableMixture, UnavailableMixture__Output as _flanstream_v1_UnavailableMixture__Output } from './flanstream/v1/UnavailableMixture.js';
import type { UuidPair as _flanstream_v1_UuidPair, UuidPair__Output as _flanstream_v1_UuidPair__Output } from './flanstream/v1/UuidPair.js';
import type { VocabLayout as _flanstream_v1_VocabLayout, VocabLayout__Output as _flanstream_v1_VocabLayout__Output } from './flanstream/v1/VocabLayout.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  flanstream: {
    v1: {
      AudioSpec: MessageTypeDefinition<_flanstream_v1_AudioSpec, _flanstream_v1_AudioSpec__Output>
      Batch: MessageTypeDefinition<_flanstream_v1_Batch, _flanstream_v1_Batch__Output>
      CorpusInfo: MessageTypeDefinition<_flanstream_v1_CorpusInfo, _flanstream_v1_CorpusInfo__Output>
      DataService: SubtypeConstructor<typeof grpc.Client, _flanstream_v1_DataServiceClient> & { service: _flanstream_v1_DataServiceDefinition }
      DatasetInfo: MessageTypeDefinition<_flanstream_v1_DatasetInfo, _flanstream_v1_DatasetInfo__Output>
      DatasetTaskCount: MessageTypeDefinition<_flanstream_v1_DatasetTaskCount, _flanstream_v1_DatasetTaskCount__Output>
      EvalExample: MessageTypeDefinition<_flanstream_v1_EvalExample, _flanstream_v1_EvalExample__Output>
      FilterCounts: MessageTypeDefinition<_flanstream_v1_FilterCounts, _flanstream_v1_FilterCounts__Output>
      FilterTaskCount: MessageTypeDefinition<_flanstream_v1_FilterTaskCount, _flanstream_v1_FilterTaskCount__Output>
      FilterText: MessageTypeDefinition<_flanstream_v1_FilterText, _flanstream_v1_FilterText__Output>
      GetCorpusInfoRequest: MessageTypeDefinition<_flanstream_v1_GetCorpusInfoRequest, _flanstream_v1_GetCorpusInfoRequest__Output>
      GuardRemoval: MessageTypeDefinition<_flanstream_v1_GuardRemoval, _flanstream_v1_GuardRemoval__Output>
      Heldout: MessageTypeDefinition<_flanstream_v1_Heldout, _flanstream_v1_Heldout__Output>
      HeldoutSetInfo: MessageTypeDefinition<_flanstream_v1_HeldoutSetInfo, _flanstream_v1_HeldoutSetInfo__Output>
      LossReport: MessageTypeDefinition<_flanstream_v1_LossReport, _flanstream_v1_LossReport__Output>
      Mixture: MessageTypeDefinition<_flanstream_v1_Mixture, _flanstream_v1_Mixture__Output>
      MixtureUpdate: MessageTypeDefinition<_flanstream_v1_MixtureUpdate, _flanstream_v1_MixtureUpdate__Output>
      Resume: MessageTypeDefinition<_flanstream_v1_Resume, _flanstream_v1_Resume__Output>
      SpecChoices: MessageTypeDefinition<_flanstream_v1_SpecChoices, _flanstream_v1_SpecChoices__Output>
      Stats: MessageTypeDefinition<_flanstream_v1_Stats, _flanstream_v1_Stats__Output>
      StreamEnd: MessageTypeDefinition<_flanstream_v1_StreamEnd, _flanstream_v1_StreamEnd__Output>
      StreamRequest: MessageTypeDefinition<_flanstream_v1_StreamRequest, _flanstream_v1_StreamRequest__Output>
      StreamResponse: MessageTypeDefinition<_flanstream_v1_StreamResponse, _flanstream_v1_StreamResponse__Output>
      StreamSpec: MessageTypeDefinition<_flanstream_v1_StreamSpec, _flanstream_v1_StreamSpec__Output>
      TaskInfo: MessageTypeDefinition<_flanstream_v1_TaskInfo, _flanstream_v1_TaskInfo__Output>
      TaskLoss: MessageTypeDefinition<_flanstream_v1_TaskLoss, _flanstream_v1_TaskLoss__Output>
      UnavailableMixture: MessageTypeDefinition<_flanstream_v1_UnavailableMixture, _flanstream_v1_UnavailableMixture__Output>
      UuidPair: MessageTypeDefinition<_flanstream_v1_UuidPair, _flanstream_v1_UuidPair__Output>
      VocabLayout: MessageTypeDefinition<_flanstream_v1_VocabLayout, _flanstream_v1_VocabLayout__Output>
    }
  }
}

