// The file descriptors that server reflection serves, built from the .proto sources the way
// protoc builds them (names as written, snake_case fields with their json_name, map entries as
// nested `<Field>Entry` types, fully-qualified type references, one descriptor per source file),
// so that protoc-based tools (grpcurl, Postman, a standard descriptor pool) accept them.
// proto-loader's own descriptors are not that: they merge files per package, camelCase fields
// and name a map's entry type after the field, which a strict descriptor pool rejects.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PackageDefinition } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';

/** A .proto file: its import path (the descriptor's name) and the directory that path is under. */
export interface ProtoSource {
  readonly root: string;
  readonly file: string;
}

// FieldDescriptorProto.Type numbers of the scalar types.
const SCALAR_TYPES: Readonly<Record<string, number>> = {
  double: 1,
  float: 2,
  int64: 3,
  uint64: 4,
  int32: 5,
  fixed64: 6,
  fixed32: 7,
  bool: 8,
  string: 9,
  bytes: 12,
  uint32: 13,
  sfixed32: 15,
  sfixed64: 16,
  sint32: 17,
  sint64: 18,
};
const TYPE_MESSAGE = 11;
const TYPE_ENUM = 14;
const LABEL_OPTIONAL = 1;
const LABEL_REPEATED = 3;

type Obj = Record<string, unknown>;

/** protoc's json_name: underscores dropped, the letter after one upper-cased. */
export function jsonName(name: string): string {
  return name.replace(/_+([a-z0-9]?)/g, (_, c: string) => c.toUpperCase());
}

/** protoc's name of a map field's entry type: the field name in CamelCase plus "Entry". */
function mapEntryName(field: string): string {
  const camel = jsonName(field);
  return `${camel.charAt(0).toUpperCase()}${camel.slice(1)}Entry`;
}

const snakeToCamel = (key: string): string => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Options as the descriptor types spell them (camelCase), the parser's extras dropped. */
function optionsOf(options: Obj | undefined, drop: readonly string[] = []): Obj | undefined {
  if (!options) return undefined;
  const out: Obj = {};
  for (const [k, v] of Object.entries(options)) if (!drop.includes(k) && !k.startsWith('(')) out[snakeToCamel(k)] = v;
  return Object.keys(out).length ? out : undefined;
}

function fieldType(field: protobuf.Field): { type: number; typeName?: string } {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return { type: TYPE_MESSAGE, typeName: resolved.fullName };
  if (resolved instanceof protobuf.Enum) return { type: TYPE_ENUM, typeName: resolved.fullName };
  const type = SCALAR_TYPES[field.type];
  if (type === undefined) throw new Error(`reflection: ${field.fullName} has unknown type ${field.type}`);
  return { type };
}

function reserved(
  type: protobuf.Type | protobuf.Enum,
  endOffset: number,
): { reservedRange?: Obj[]; reservedName?: string[] } {
  const list = (type.reserved ?? []) as (number[] | string)[];
  const ranges = list
    .filter((r): r is number[] => Array.isArray(r))
    .map(([start, end]) => ({ start, end: (end as number) + endOffset }));
  const names = list.filter((r): r is string => typeof r === 'string');
  return { ...(ranges.length ? { reservedRange: ranges } : {}), ...(names.length ? { reservedName: names } : {}) };
}

function enumProto(e: protobuf.Enum): Obj {
  return {
    name: e.name,
    value: Object.entries(e.values).map(([name, number]) => ({ name, number })),
    options: optionsOf(e.options),
    ...reserved(e, 0), // an enum's reserved range is inclusive, like the source
  };
}

function messageProto(type: protobuf.Type): Obj {
  const nested: Obj[] = [];
  const enums: Obj[] = [];
  for (const n of type.nestedArray) {
    if (n instanceof protobuf.Type) nested.push(messageProto(n));
    else if (n instanceof protobuf.Enum) enums.push(enumProto(n));
  }
  // protoc lists real oneofs first, then the synthetic ones of proto3 `optional` fields.
  const oneofs = [...type.oneofsArray].sort((a, b) => Number(isSynthetic(a)) - Number(isSynthetic(b)));
  const fields = type.fieldsArray.map((f) => {
    const base: Obj = { name: f.name, number: f.id, jsonName: jsonName(f.name) };
    if (f instanceof protobuf.MapField) {
      const entry = mapEntryName(f.name);
      const key = { name: 'key', number: 1, label: LABEL_OPTIONAL, type: SCALAR_TYPES[f.keyType], jsonName: 'key' };
      nested.push({
        name: entry,
        field: [key, { name: 'value', number: 2, label: LABEL_OPTIONAL, ...fieldType(f), jsonName: 'value' }],
        options: { mapEntry: true },
      });
      return { ...base, label: LABEL_REPEATED, type: TYPE_MESSAGE, typeName: `${type.fullName}.${entry}` };
    }
    const oneof = f.partOf ? oneofs.indexOf(f.partOf) : -1;
    return {
      ...base,
      label: f.repeated ? LABEL_REPEATED : LABEL_OPTIONAL,
      ...fieldType(f),
      ...(oneof >= 0 ? { oneofIndex: oneof } : {}),
      ...(f.options?.proto3_optional ? { proto3Optional: true } : {}),
      options: optionsOf(f.options, ['proto3_optional']),
    };
  });
  return {
    name: type.name,
    field: fields,
    nestedType: nested,
    enumType: enums,
    oneofDecl: oneofs.map((o) => ({ name: o.name })),
    ...reserved(type, 1), // a message's reserved range is end-exclusive in descriptors
  };
}

function isSynthetic(oneof: protobuf.OneOf): boolean {
  return oneof.fieldsArray.length === 1 && oneof.fieldsArray[0]!.options?.proto3_optional === true;
}

function serviceProto(service: protobuf.Service): Obj {
  return {
    name: service.name,
    method: service.methodsArray.map((m) => ({
      name: m.name,
      inputType: m.resolvedRequestType!.fullName,
      outputType: m.resolvedResponseType!.fullName,
      ...(m.requestStream ? { clientStreaming: true } : {}),
      ...(m.responseStream ? { serverStreaming: true } : {}),
    })),
  };
}

/** One FileDescriptorProto (encoded) per source, in the order given. */
export function protocFileDescriptors(sources: readonly ProtoSource[]): Buffer[] {
  const shared = new protobuf.Root();
  const files = sources.map((s) => {
    const text = readFileSync(join(s.root, s.file), 'utf8');
    const own = protobuf.parse(text, new protobuf.Root(), { keepCase: true });
    protobuf.parse(text, shared, { keepCase: true });
    const syntax = /^\s*syntax\s*=\s*["'](proto[23])["']/m.exec(text)?.[1] ?? 'proto2';
    return { name: s.file, own, syntax };
  });
  shared.resolveAll();
  return files.map(({ name, own, syntax }) => {
    const pkg = own.package ?? '';
    const ns = pkg ? own.root.lookup(pkg) : own.root;
    if (!(ns instanceof protobuf.Namespace)) throw new Error(`reflection: ${name} declares nothing in ${pkg}`);
    const declared = ns.nestedArray.map((n) => shared.lookup(n.fullName));
    const proto = {
      name,
      package: pkg || undefined,
      dependency: [...(own.imports ?? []), ...(own.weakImports ?? [])],
      messageType: declared.filter((n): n is protobuf.Type => n instanceof protobuf.Type).map(messageProto),
      enumType: declared.filter((n): n is protobuf.Enum => n instanceof protobuf.Enum).map(enumProto),
      service: declared.filter((n): n is protobuf.Service => n instanceof protobuf.Service).map(serviceProto),
      options: optionsOf(ns.options),
      syntax: syntax === 'proto3' ? syntax : undefined, // protoc names proto3 only
    };
    const { FileDescriptorProto } = descriptor as unknown as { FileDescriptorProto: protobuf.Type };
    return Buffer.from(FileDescriptorProto.encode(FileDescriptorProto.fromObject(proto)).finish());
  });
}

/**
 * What ReflectionService reads: a package definition whose entries carry file descriptors.
 * One entry holds them all; the service indexes every symbol of every file.
 */
export function reflectionPackage(sources: readonly ProtoSource[]): PackageDefinition {
  const fileDescriptorProtos = protocFileDescriptors(sources);
  return {
    [sources[0]!.file]: { format: 'Protocol Buffer 3 FileDescriptorProto', fileDescriptorProtos },
  } as unknown as PackageDefinition;
}
