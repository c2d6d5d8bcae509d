"""``coordinator audit verify|checkpoint|extract`` through the installed console script,
on a real SQLite file: exit 0 when intact, one ``Feil:`` line naming the first bad event
(stream and seq) and a non-zero exit when not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import update

from coordinator.bootstrap import build
from coordinator.cases.commands import FireTrigger, OpenCase
from coordinator.cases.model import Actor
from coordinator.demo import referral
from coordinator.persistence import migrate
from coordinator.persistence.database import make_engine
from coordinator.persistence.tables import audit_events
from coordinator.testing import FakeClock

CONSOLE_SCRIPT = Path(sys.executable).with_name("coordinator")
GP = Actor("gp-1", "fastlege")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CONSOLE_SCRIPT), *args], env=env, capture_output=True,  # noqa: S603
                          text=True, timeout=120, check=False)


def test_verify_checkpoint_extract_and_a_named_break(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")},
           "COORDINATOR_DATABASE_URL": url, "COORDINATOR_DATA_DIR": str(tmp_path / "data"),
           "NO_COLOR": "1"}
    engine = make_engine(url)
    migrate.upgrade(engine)
    c = build(engine=engine, clock=clock)
    _ch, profile = referral("ringsaker", clock.now().date())
    case_id = c.open_case(OpenCase("ringsaker", "fastlege", profile, GP)).id
    c.fire(FireTrigger(case_id, "begin_intake", GP))

    ok = run(env, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "intakt: 2 hendelser i 1 kjeder" in ok.stdout
    cp = run(env, "audit", "checkpoint")
    assert cp.returncode == 0 and cp.stdout.startswith("Sjekkpunkt 1: 1 kjeder, 2 hendelser")
    assert (tmp_path / "data" / "audit-checkpoint-ed25519.pem").stat().st_mode & 0o077 == 0
    assert run(env, "audit", "verify", "--case", str(case_id)).returncode == 0
    extract = run(env, "audit", "extract", "--case", str(case_id))
    rows = [json.loads(line) for line in extract.stdout.splitlines()]
    assert [(r["seq"], r["kind"]) for r in rows] == [(1, "case_opened"),
                                                      (2, "case_transitioned")]
    csv_out = run(env, "audit", "extract", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("stream,seq,")
    streams = [line.split(",", 2)[:2] for line in csv_out[1:]]
    # the two extracts are themselves audited, in the system stream, before they stream
    assert streams == [[f"case:{case_id}", "1"], [f"case:{case_id}", "2"],
                       ["system", "1"], ["system", "2"]]

    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.stream == f"case:{case_id}",
                                                audit_events.c.seq == 2)
                     .values(actor_role="nav_veileder"))
    engine.dispose()
    bad = run(env, "audit", "verify")
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert lines == [f"Feil: revisjonsloggen er brutt ved case:{case_id} seq 2: en kolonne er "
                     f"endret (stemmer ikke med innholdet) (1 funn)"]
    assert run(env, "audit", "verify", "--since", "i går").returncode == 2
