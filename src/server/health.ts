import type * as grpc from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

interface HealthRequest {
  service?: string;
}
interface HealthResponse {
  status: ServingStatus | 'SERVICE_UNKNOWN';
}

/**
 * grpc.health.v1.Health (Check, Watch, List) over grpc-health-check's service definition. Our
 * own rather than the package's HealthImplementation because shutdown must end Watch calls
 * after telling them NOT_SERVING: an open Watch would otherwise hold the graceful close of the
 * server until the grace period runs out.
 */
export class Health {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<{
    service: string;
    call: grpc.ServerWritableStream<HealthRequest, HealthResponse>;
  }>();

  private readonly maxWatches: number;
  private readonly refused: () => void;

  /** `maxWatches`: open Watch calls at most (each holds a stream and a write queue); `refused` counts a refusal. */
  constructor(
    services: readonly string[],
    initial: ServingStatus,
    maxWatches = Number.MAX_SAFE_INTEGER,
    refused: () => void = () => undefined,
  ) {
    for (const s of services) this.statuses.set(s, initial);
    this.maxWatches = maxWatches;
    this.refused = refused;
  }

  get watching(): number {
    return this.watchers.size;
  }

  /** Sets every service's status and tells the watchers. */
  setAll(status: ServingStatus): void {
    for (const s of this.statuses.keys()) this.statuses.set(s, status);
    for (const w of this.watchers) if (this.statuses.has(w.service)) w.call.write({ status });
  }

  /** Ends every Watch call (after the status they were last sent). */
  closeWatchers(): void {
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
  }

  addToServer(server: grpc.Server): void {
    server.addService(healthService as unknown as grpc.ServiceDefinition, {
      check: (call: grpc.ServerUnaryCall<HealthRequest, HealthResponse>, cb: grpc.sendUnaryData<HealthResponse>) => {
        const s = this.statuses.get(call.request.service ?? '');
        if (s) cb(null, { status: s });
        else
          cb({
            code: grpcStatus.NOT_FOUND,
            details: `health status unknown for service "${call.request.service ?? ''}"`,
          });
      },
      watch: (call: grpc.ServerWritableStream<HealthRequest, HealthResponse>) => {
        const service = call.request.service ?? '';
        if (this.watchers.size >= this.maxWatches) {
          this.refused();
          call.emit('error', {
            code: grpcStatus.RESOURCE_EXHAUSTED,
            details: `server.max_health_watches: ${this.maxWatches} Watch calls are open already; use Check, or close a Watch`,
          });
          return;
        }
        const w = { service, call };
        this.watchers.add(w);
        call.on('cancelled', () => this.watchers.delete(w));
        call.write({ status: this.statuses.get(service) ?? 'SERVICE_UNKNOWN' });
      },
      list: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        cb(null, { statuses: Object.fromEntries([...this.statuses].map(([k, v]) => [k, { status: v }])) });
      },
    });
  }
}
