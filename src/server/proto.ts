import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { describeError } from '../errors.js';

export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
export const PROTO_FILE = 'flanstream/v1/data_service.proto';

/** camelCase fields, 64-bit integers as JS numbers, defaults filled in, oneof discriminators. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export function loadDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
}

/** A message's fields by the names the loader gives them (camelCase), in field-number order. */
export function messageFields(def: protoLoader.PackageDefinition, type: string): { name: string; number: number }[] {
  const desc = def[type] as protoLoader.MessageTypeDefinition<object, object> | undefined;
  if (!desc || desc.format !== 'Protocol Buffer 3 DescriptorProto')
    throw new Error(`${type} is not a message of ${PROTO_FILE}`);
  const fields = (desc.type as { field: { name: string; number: number }[] }).field;
  // proto-loader's keepCase: false camelCases the same way (protobufjs: "_x" becomes "X").
  const camel = (s: string): string => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return fields.map((f) => ({ name: camel(f.name), number: f.number })).sort((a, b) => a.number - b.number);
}

export function dataServiceDefinition(def: protoLoader.PackageDefinition): grpc.ServiceDefinition {
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    flanstream: { v1: { DataService: grpc.ServiceClientConstructor } };
  };
  return pkg.flanstream.v1.DataService.service;
}

/** What a request that is not a valid protobuf message decodes to (see lenientRequests). */
export interface UndecodableRequest {
  readonly undecodable: string;
}

export function isUndecodable(req: unknown): req is UndecodableRequest {
  return typeof req === 'object' && req !== null && 'undecodable' in req;
}

/**
 * grpc-js answers INTERNAL when a request does not deserialize, before any handler runs. The
 * server's copy of the definition decodes leniently instead, so the handler can answer
 * INVALID_ARGUMENT: a malformed request is the client's error.
 */
export function lenientRequests(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(service as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
    out[name] = {
      ...m,
      requestDeserialize: (buf: Buffer): unknown => {
        try {
          return m.requestDeserialize(buf);
        } catch (err) {
          return { undecodable: describeError(err) } satisfies UndecodableRequest;
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
