import type { DataServiceCore } from '../stream/data-service-core.js';
import type { DataServiceHandlers } from './data-service.js';

/** Routes of the live status page; the page itself arrives with the operations work. */
export function statusRoutes(core: DataServiceCore, handlers: DataServiceHandlers): Record<string, () => [string, string]> {
  return {
    '/status.json': () => [
      'application/json',
      JSON.stringify({
        index: core.reader.fingerprint,
        records: core.reader.manifest.records,
        tasks: core.reader.tasks.length,
        activeStreams: handlers.activeStreams,
      }),
    ],
  };
}
