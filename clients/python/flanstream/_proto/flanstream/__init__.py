"""Generated protobuf/gRPC stubs (see clients/python/scripts/gen_stubs.py)."""
