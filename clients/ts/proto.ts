import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * The client loads the service definition from the .proto itself, from the path next to the
 * client (the repository's proto/ folder; a copy of the client takes that folder along): it
 * shares the wire contract with the server, never the server's code.
 */
export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
export const PROTO_FILE = 'flanstream/v1/data_service.proto';

/**
 * camelCase fields, 64-bit integers as numbers, enums as strings, defaults filled in, oneof
 * names: the options the message types in proto/generated are generated for.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let ctor: grpc.ServiceClientConstructor | undefined;

/** The DataService client class, built once from the .proto. */
export function dataServiceClient(): grpc.ServiceClientConstructor {
  if (!ctor) {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS)) as unknown as {
      flanstream: { v1: { DataService: grpc.ServiceClientConstructor } };
    };
    ctor = pkg.flanstream.v1.DataService;
  }
  return ctor;
}
