import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
export const PROTO_FILE = 'flanstream/v1/data_service.proto';

/** camelCase fields, 64-bit integers as JS numbers, defaults filled in, oneof discriminators. */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_ROOT] };

export function loadDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
}

export function dataServiceDefinition(def: protoLoader.PackageDefinition): grpc.ServiceDefinition {
  const pkg = grpc.loadPackageDefinition(def) as unknown as { flanstream: { v1: { DataService: grpc.ServiceClientConstructor } } };
  return pkg.flanstream.v1.DataService.service;
}
