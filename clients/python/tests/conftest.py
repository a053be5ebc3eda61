"""Fixtures: a real flanstream server (Node) on a sample corpus, and an in-process fake one.

The real-server fixtures build ``dist/`` with ``npm run build`` when ``dist/cli.js`` is missing,
create a 3000-record sample corpus and its index once per session, and start
``node dist/cli.js serve --index … --port 0``, reading the port from the server's first JSON
``{"event": "listening", "port": …}`` line on stdout. They never skip: without a working server
the server-backed tests fail.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

CLIENT_ROOT = Path(__file__).resolve().parents[1]          # clients/python
REPO_ROOT = CLIENT_ROOT.parents[1]                           # repository root
CLI = REPO_ROOT / "dist" / "cli.js"
if str(CLIENT_ROOT) not in sys.path:
    sys.path.insert(0, str(CLIENT_ROOT))

from fake_server import FakeServer  # noqa: E402

STARTUP_TIMEOUT = float(os.environ.get("FLANSTREAM_TEST_STARTUP_TIMEOUT", "120"))


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; the server-backed tests need Node.js 20")
    return node


def _run(args: List[str], timeout: float = 900) -> None:
    proc = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")


def ensure_built() -> None:
    if not CLI.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("dist/cli.js is missing and npm is not on PATH to build it")
        _run([npm, "run", "build"])
        if not CLI.exists():
            pytest.fail("npm run build did not produce dist/cli.js")


class ServerProcess:
    """``node dist/cli.js serve`` as a child process."""

    def __init__(self, index_dir: Path, log_dir: Path, extra: Optional[List[str]] = None) -> None:
        self.log_path = log_dir / f"server-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            # --http-port 0: a free metrics port, so several test servers (and `npm start`) coexist
            [_node(), str(CLI), "serve", "--index", str(index_dir), "--port", "0", "--http-port", "0", *(extra or [])],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL,
        )
        self.lines: List[str] = []
        self._ready = threading.Event()
        self.port: Optional[int] = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(STARTUP_TIMEOUT) or self.port is None:
            self.kill()
            pytest.fail(f"server did not report listening within {STARTUP_TIMEOUT}s; "
                        f"stdout: {self.lines[-20:]}; stderr: {self.log_path.read_text(errors='replace')[-4000:]}")
        self.target = f"localhost:{self.port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            self.lines.append(line)
            if self.port is None and line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "listening" and "port" in event:
                    self.port = int(event["port"])
                    self._ready.set()
        self._ready.set()

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM (graceful drain) and wait; SIGKILL if it does not exit in ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL (a crash) and wait."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


SAMPLE_AUDIO_ROOT = "/datasets/Audio-FLAN-Dataset"


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3000-record sample corpus, indexed once per session (``npm test`` builds it once for both
    suites and names its folder in FLANSTREAM_TEST_SAMPLE)."""
    ensure_built()
    shared = os.environ.get("FLANSTREAM_TEST_SAMPLE")
    if shared:
        return Path(shared) / "index"
    root = tmp_path_factory.mktemp("flanstream")
    corpus, index = root / "corpus", root / "index"
    _run([_node(), str(CLI), "sample-corpus", str(corpus), "--records", "3000", "--seed", "0"])
    # The sample corpus's absolute .scp paths sit under this fixed fake prefix (sample-release-shape.ts).
    _run([_node(), str(CLI), "index", str(corpus), "--out", str(index), "--audio-root", SAMPLE_AUDIO_ROOT])
    return index


@pytest.fixture(scope="session")
def server(index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the whole session."""
    srv = ServerProcess(index_dir, tmp_path_factory.mktemp("logs"))
    yield srv
    srv.terminate()


@pytest.fixture
def start_server(index_dir: Path, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory for extra servers on the same index (stopped at the end of the test)."""
    started: List[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        srv = ServerProcess(index_dir, tmp_path, list(extra))
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.terminate()


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """An in-process fake DataService (see ``fake_server.py``)."""
    srv = FakeServer()
    yield srv
    srv.stop(0)


@pytest.fixture
def fake_server_factory() -> Iterator[Callable[[], FakeServer]]:
    started: List[FakeServer] = []

    def start() -> FakeServer:
        srv = FakeServer()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop(0)
