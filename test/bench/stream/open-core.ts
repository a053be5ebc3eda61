import { coreSettings } from '../../../src/config/core-settings.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { DataServiceCore } from '../../../src/stream/data-service-core.js';

/** A DataServiceCore over `index` with the default configuration (benchmarks drive it in-process). */
export async function openCore(index: string): Promise<DataServiceCore> {
  return DataServiceCore.open(index, coreSettings(loadConfig(undefined, { 'index.dir': index }, {})));
}
