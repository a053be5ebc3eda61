"""The checked-in protobuf/gRPC stubs must match what gen_stubs.py makes from proto/."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLIENT_ROOT = Path(__file__).resolve().parents[1]
STUB_DIR = CLIENT_ROOT / "flanstream" / "_proto" / "flanstream" / "v1"
FILES = ("data_service_pb2.py", "data_service_pb2_grpc.py")


def test_stubs_match_proto(tmp_path: Path) -> None:
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    proc = subprocess.run([python, str(CLIENT_ROOT / "scripts" / "gen_stubs.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for name in FILES:
        fresh = (tmp_path / name).read_text()
        checked_in = (STUB_DIR / name).read_text()
        assert fresh == checked_in, (
            f"{name} is out of date with proto/; run: /usr/bin/python3 clients/python/scripts/gen_stubs.py")


def test_stubs_import_as_package() -> None:
    from flanstream._proto.flanstream.v1 import data_service_pb2 as pb
    from flanstream._proto.flanstream.v1 import data_service_pb2_grpc as pb_grpc

    assert pb.DESCRIPTOR.package == "flanstream.v1"
    assert pb.StreamRequest.FromString(pb.StreamRequest(spec=pb.StreamSpec(split="train")).SerializeToString()).spec.split == "train"
    assert hasattr(pb_grpc, "DataServiceStub")
