"""Real local servers for integration tests: an MLflow tracking server and a moto S3 server.

Both listen on 127.0.0.1 only, each in its own process group, and are stopped by that group's id
(SIGTERM, then SIGKILL after 10 s) when their fixture ends. Startup is bounded: a server that does
not answer its health URL in time fails the test with the tail of its log.

  mlflow_server          (module) -> "http://127.0.0.1:<port>"  sqlite store + proxied artifacts
  moto_server            (module) -> "http://127.0.0.1:<port>"  S3 endpoint (any keys work)
  mlflow_server_factory  (function) -> start(name) -> LocalServer  (.url, .workdir, .db_uri, .stop(),
                                       .kill()); every server it started is stopped at teardown
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.models_fixture import tiny_repo  # noqa: F401 - a fixture for every integration test module

BIN = Path(sys.executable).parent
MLFLOW_START_TIMEOUT = 60.0
MOTO_START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class LocalServer:
    name: str
    url: str
    workdir: Path
    process: subprocess.Popen
    log: Path
    db_uri: str | None = None
    stopped: bool = field(default=False)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)  # start_new_session: the group id is the leader's pid

    def kill(self) -> None:
        """Simulate a crash: SIGKILL the whole group (server and its workers), no clean shutdown."""
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.stopped = True

    def stop(self) -> None:
        if self.stopped:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._signal_group(signal.SIGKILL)  # workers that outlived the leader
        self.stopped = True


def _start(
    name: str,
    cmd: list[str],
    workdir: Path,
    health: str,
    timeout: float,
    env: dict[str, str] | None = None,
    url: str = "",
    db_uri: str | None = None,
) -> LocalServer:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            cmd,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    server = LocalServer(name, url, workdir, process, log, db_uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stopped = True
            pytest.fail(f"{name} exited with code {process.returncode} before answering {health}:\n{server.log_tail()}")
        if _answers(health):
            return server
        time.sleep(0.25)
    server.stop()
    pytest.fail(f"{name} did not answer {health} within {timeout:.0f} s:\n{server.log_tail()}")


def start_mlflow_server(workdir: Path, timeout: float = MLFLOW_START_TIMEOUT) -> LocalServer:
    port = free_port()
    db_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        db_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        str(workdir / "artifacts"),
    ]
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    url = f"http://127.0.0.1:{port}"
    return _start("mlflow", cmd, workdir, f"{url}/health", timeout, env, url, db_uri)


def start_moto_server(workdir: Path, timeout: float = MOTO_START_TIMEOUT) -> LocalServer:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    return _start("moto", cmd, workdir, f"{url}/", timeout, url=url)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def mlflow_server_factory(tmp_path):
    servers: list[LocalServer] = []

    def start(name: str = "mlflow") -> LocalServer:
        servers.append(start_mlflow_server(tmp_path / f"{name}-{len(servers)}"))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    server = start_moto_server(tmp_path_factory.mktemp("moto-server"))
    try:
        yield server.url
    finally:
        server.stop()
