"""What ``make run`` does, end to end: upgrade, load the demo, serve; then ask over HTTP.

Runs the installed console script against a fresh SQLite file on a free port, and stops
the server with SIGTERM, which uvicorn handles as a graceful shutdown.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coordinator.workflows.registry import WorkflowRegistry

CONSOLE_SCRIPT = Path(sys.executable).with_name("coordinator")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    return {**environ, "COORDINATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}"}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CONSOLE_SCRIPT), *args], env=env, capture_output=True,  # noqa: S603
                          text=True, timeout=120, check=False)


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    for args in (("db", "upgrade"), ("demo", "load", "--if-empty")):
        done = _run(env, *args)
        assert done.returncode == 0, done.stderr
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), "serve", "--port", str(port)],  # noqa: S603
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def test_make_run_serves_health_openapi_and_pilots(server: str, tmp_path: Path) -> None:
    health = httpx.get(f"{server}/health", timeout=5)
    assert health.status_code == 200 and health.json()["database"] == "ok"
    spec = httpx.get(f"{server}/openapi.json", timeout=5).json()
    assert spec["openapi"].startswith("3.1")
    pilots = httpx.get(f"{server}/api/v1/pilots", timeout=5).json()
    assert [p["key"] for p in pilots["items"]] == WorkflowRegistry.builtin().keys()
    logged = (tmp_path / "serve.log").read_text()
    assert health.headers["x-request-id"] in logged      # one JSON log line per request
