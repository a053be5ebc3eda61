"""A protoc-world reflection client, as grpcurl is one: asks a server for its services over
grpc.reflection.v1 (messages from protoc's compilation of the reflection .proto, calls through
grpcio), loads every file descriptor it returns into a fresh standard descriptor pool (which
rejects what protoc would not produce), compares each with protoc's own descriptor of the same
.proto, then calls GetCorpusInfo with message classes made from the reflected descriptors only.

Usage: reflection_check.py TARGET REFLECTION_DESCRIPTOR_SET PROTOC_DESCRIPTOR_SET
Prints one JSON object with what it found.
"""

from __future__ import annotations

import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

__all__ = ["main"]


def load_set(path: str) -> descriptor_pb2.FileDescriptorSet:
    out = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        out.ParseFromString(f.read())
    return out


def message_class(desc: object) -> type:
    """The message class of a descriptor (GetMessageClass from protobuf 4.22 on)."""
    get = getattr(message_factory, "GetMessageClass", None)
    if get is not None:
        return get(desc)
    return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)  # type: ignore[attr-defined]


def reflection_classes(path: str) -> tuple[type, type]:
    pool = descriptor_pool.DescriptorPool()
    for f in load_set(path).file:
        pool.Add(f)
    req = pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest")
    res = pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse")
    return message_class(req), message_class(res)


def main(argv: list[str]) -> int:
    target, reflection_set, protoc_set = argv
    Req, Res = reflection_classes(reflection_set)
    channel = grpc.insecure_channel(target)
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=Res.FromString,
    )

    def ask(**kw: str) -> object:
        (res,) = list(call(iter([Req(**kw)]), timeout=20))
        if res.HasField("error_response"):
            raise RuntimeError(f"reflection error for {kw}: {res.error_response.error_message}")
        return res

    services = [s.name for s in ask(list_services="").list_services_response.service]
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    pending = []
    for s in services:
        pending.extend(ask(file_containing_symbol=s).file_descriptor_response.file_descriptor_proto)
    while pending:
        fdp = descriptor_pb2.FileDescriptorProto.FromString(pending.pop())
        if fdp.name in files:
            continue
        files[fdp.name] = fdp
        for dep in fdp.dependency:
            if dep not in files:
                pending.extend(ask(file_by_filename=dep).file_descriptor_response.file_descriptor_proto)

    # The strict check: a standard pool builds each file (dependencies first) or raises.
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added:
            return
        for dep in files[name].dependency:
            add(dep)
        pool.Add(files[name])
        added.add(name)

    errors = {}
    for name in sorted(files):
        try:
            add(name)
        except Exception as e:  # noqa: BLE001 - reported to the test, which names the file
            errors[name] = f"{type(e).__name__}: {e}"

    protoc = {f.name: f for f in load_set(protoc_set).file}
    differ = sorted(n for n in files if n in protoc and files[n] != protoc[n])
    report: dict[str, object] = {
        "services": sorted(services),
        "files": sorted(files),
        "pool_errors": errors,
        "not_from_protoc": sorted(set(files) - set(protoc)),
        "differ_from_protoc": differ,
    }
    if not errors:
        # What grpcurl does next: a call built from the reflected schema alone.
        svc = pool.FindServiceByName("flanstream.v1.DataService")
        m = svc.methods_by_name["GetCorpusInfo"]
        info = channel.unary_unary(
            f"/{svc.full_name}/{m.name}",
            request_serializer=lambda x: x.SerializeToString(),
            response_deserializer=message_class(m.output_type).FromString,
        )(message_class(m.input_type)(), timeout=20)
        as_json = json_format.MessageToDict(info)
        report["corpus_info_keys"] = sorted(as_json)
        report["first_task"] = as_json["tasks"][0]
        spec = pool.FindMessageTypeByName("flanstream.v1.StreamSpec")
        report["stream_spec_fields"] = {f.name: f.json_name for f in spec.fields}
        mixture = pool.FindMessageTypeByName("flanstream.v1.Mixture")
        weights = mixture.fields_by_name["weights"]
        report["weights_entry"] = weights.message_type.name if weights.message_type else None
        report["weights_is_map"] = bool(weights.message_type and weights.message_type.GetOptions().map_entry)
    channel.close()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
