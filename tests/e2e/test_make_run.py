"""What ``make run`` does, end to end: upgrade, load the demo, serve; then ask over HTTP.

Runs the installed console script against a fresh SQLite file on a free port, and stops
the server with SIGTERM, which uvicorn handles as a graceful shutdown.
"""

from __future__ import annotations

import os
import re
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
README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    return {**environ, "COORDINATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
            "COORDINATOR_DATA_DIR": str(tmp_path / "data")}


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


def tour_script(port: str) -> str:
    """The README's authenticated curl tour as one bash script, against ``port``."""
    text = README.read_text()
    tour = text[text.index("Case data needs a bearer token"):text.index("[docs/api.md]")]
    blocks = re.findall(r"```sh\n(.*?)```", tour, re.S)
    assert len(blocks) >= 3
    script = "\n".join(blocks).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    script = script.replace(".venv/bin/coordinator", str(CONSOLE_SCRIPT))
    return "set -euo pipefail\n" + re.sub(r"^curl", "echo; curl", script, flags=re.M)


def test_the_readme_tour_works_against_the_demo_data(server: str, env: dict[str, str]) -> None:
    done = subprocess.run(["bash", "-c", tour_script(server.rsplit(":", 1)[1])],  # noqa: S603,S607
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert '"role":"nav_veileder"' in out
    assert 'etag: "1"' in out.lower()                                # the case page
    assert '"state":"intake","version":2' in out                     # advanced once
    assert '"type":"/problems/stale-version"' in out                 # then 412
    assert '"kind":"transitioned"' in out                            # in the history
    assert '"type":"/problems/case-not-found"' in out                # prosjektleder: 404
    assert '"count":' in out and '"total":' in out                   # aggregates
    assert out.count('"kind":"follow_up"') >= 2          # scheduled, then in my meetings
