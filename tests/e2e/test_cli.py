"""The ``coordinator`` command line, against a real SQLite file migrated by Alembic.

Error handling is checked through the installed console script (a subprocess), so what is
tested is exactly what a user sees: one ``Feil: ...`` line on stderr, a non-zero exit, no
traceback. Output of the other commands is checked in-process with typer's CliRunner.
Expected values come from the workflow registry, never from the CLI's own code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from coordinator.bootstrap import build
from coordinator.cases.commands import OpenCase
from coordinator.cases.model import Actor
from coordinator.cli import app
from coordinator.demo import referral
from coordinator.persistence import migrate
from coordinator.persistence.database import make_engine
from coordinator.service import Coordinator
from coordinator.testing import FakeClock
from coordinator.workflows.registry import WorkflowRegistry

CONSOLE_SCRIPT = Path(sys.executable).with_name("coordinator")
REGISTRY = WorkflowRegistry.builtin()
MIGRATIONS = [wf.ref for wf in REGISTRY.all() if wf.definition.migrates_from is not None]
UNREACHABLE_PG = "postgresql://coordinator@127.0.0.1:1/nothing"     # port 1: refused


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    return {**environ, "COORDINATOR_DATABASE_URL": db_url,
            "COORDINATOR_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"}


@pytest.fixture
def migrated(db_url: str) -> str:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    engine.dispose()
    return db_url


@pytest.fixture
def library(migrated: str, clock: FakeClock) -> Iterator[Coordinator]:
    """The library on the same database file the CLI uses."""
    engine = make_engine(migrated)
    yield build(engine=engine, clock=clock)
    engine.dispose()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CONSOLE_SCRIPT), *args], env=env, capture_output=True,  # noqa: S603
                          text=True, timeout=120, check=False)


def invoke(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COORDINATOR_DATABASE_URL": db_url,
                                                    "COORDINATOR_DEBUG": None})


def table_rows(output: str) -> list[list[str]]:
    """Body rows of the rich tables in ``output`` (header rows use ┃, body rows │)."""
    return [[c.strip() for c in line.split("│")] for line in output.splitlines() if "│" in line]


def open_case(coordinator: Coordinator, pilot: str) -> uuid.UUID:
    definition = coordinator.workflows.latest(pilot).definition
    _, profile = referral(pilot, coordinator.clock.now().date())
    channel = definition.referrers[0]
    return coordinator.open_case(OpenCase(pilot, channel, profile, Actor("t", "fastlege"))).id


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Feil: ")
    return lines[0]


# -- db -----------------------------------------------------------------------------------
def test_db_upgrade_migrates_to_head_and_is_idempotent(env: dict[str, str], db_url: str) -> None:
    before = run(env, "db", "current")
    assert before.returncode == 0 and "ingen revisjon" in before.stdout
    for _ in range(2):
        result = run(env, "db", "upgrade")
        assert result.returncode == 0, result.stderr
        assert str(migrate.head()) in result.stdout
    engine = make_engine(db_url)
    try:
        assert migrate.current(engine) == migrate.head()
    finally:
        engine.dispose()
    after = run(env, "db", "current")
    assert after.returncode == 0 and after.stdout.strip() == f"{migrate.head()} (nyeste)"


def test_db_upgrade_on_an_unreachable_database_is_one_line(env: dict[str, str]) -> None:
    line = assert_one_error_line(run({**env, "COORDINATOR_DATABASE_URL": UNREACHABLE_PG},
                                     "db", "upgrade"))
    assert "databasen" in line


# -- pilots and workflows -----------------------------------------------------------------
def test_pilots_list_shows_every_pilot_with_its_versions(db_url: str) -> None:
    result = invoke(db_url, "pilots", "list")
    assert result.exit_code == 0, result.output
    rows = {row[0]: row for row in table_rows(result.stdout)}
    assert sorted(rows) == REGISTRY.keys()
    for key, row in rows.items():
        latest = REGISTRY.latest(key).definition
        versions = sorted(w.definition.version for w in REGISTRY.all() if w.definition.key == key)
        assert row[1:] == [latest.title, str(latest.model), str(latest.version),
                           ", ".join(map(str, versions))]


@pytest.mark.parametrize("ref", [wf.ref for wf in REGISTRY.all()], ids=str)
def test_workflow_show_mermaid_has_every_state(db_url: str, ref: tuple[str, int]) -> None:
    key, version = ref
    result = invoke(db_url, "workflow", "show", key, "--version", str(version),
                    "--format", "mermaid")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("stateDiagram-v2\n")
    nodes = set()
    for line in result.stdout.splitlines()[1:]:
        if "-->" in line:
            src, _, rest = line.strip().partition(" --> ")
            nodes |= {src, rest.split(":")[0].strip()}
    assert nodes - {"[*]"} == {str(s) for s in REGISTRY.get(key, version).definition.states}


def test_workflow_show_defaults_to_the_latest_version_as_text(db_url: str) -> None:
    key = REGISTRY.keys()[0]
    latest = REGISTRY.latest(key).definition
    result = invoke(db_url, "workflow", "show", key)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith(f"{key} v{latest.version} ")


# -- one line per error, through the real console script ------------------------------------
@pytest.mark.parametrize(("args", "expected"), [
    (("case", "show", "6a1e2b43-7f3c-4f4e-9d86-1d0f5d3e2a11"),
     "fant ingen sak med id 6a1e2b43-7f3c-4f4e-9d86-1d0f5d3e2a11"),
    (("case", "show", "not-a-uuid"), "«not-a-uuid» er ikke en gyldig saks-id"),
    (("case", "show"), "Missing argument"),
    (("workflow", "show", "atlantis"), "atlantis"),
    (("workflow", "show", "ringsaker", "--version", "99"), "versjon 99"),
    (("workflow", "show", "ringsaker", "--format", "png"), "png"),
    (("cases", "list", "--pilot", "atlantis"), "atlantis"),
    (("cases", "list", "--after", "yesterday"), "yesterday"),
    (("cases", "list", "--state", "limbo"), "limbo"),
    (("cases", "list", "--limit", "0"), "--limit"),
    (("cases", "migrate", "--pilot", "atlantis", "--to", "2"), "atlantis"),
    (("no-such-command",), "no-such-command"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_errors_are_one_line_on_stderr(env: dict[str, str], migrated: str,
                                       args: tuple[str, ...], expected: str) -> None:
    assert expected in assert_one_error_line(run(env, *args))


def test_unreachable_database_is_one_line(env: dict[str, str]) -> None:
    result = run({**env, "COORDINATOR_DATABASE_URL": UNREACHABLE_PG}, "cases", "list")
    assert "databasen svarer ikke" in assert_one_error_line(result)


def test_unmigrated_database_says_to_upgrade(env: dict[str, str]) -> None:
    assert "coordinator db upgrade" in assert_one_error_line(run(env, "cases", "list"))


# -- cases --------------------------------------------------------------------------------
@pytest.mark.skipif(not MIGRATIONS, reason="no definition declares a migration yet")
def test_cases_migrate_dry_run_on_an_empty_database(env: dict[str, str], migrated: str) -> None:
    key, version = MIGRATIONS[0]
    result = run(env, "cases", "migrate", "--pilot", key, "--to", str(version), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "0 kan flyttes, 0 er blokkert" in result.stdout


def test_case_show_lists_state_actions_and_history(library: Coordinator, migrated: str) -> None:
    pilot = REGISTRY.keys()[0]
    case_id = open_case(library, pilot)
    d = REGISTRY.latest(pilot).definition
    result = invoke(migrated, "case", "show", str(case_id))
    assert result.exit_code == 0, result.output
    assert f"Sak {case_id}" in result.stdout
    rows = table_rows(result.stdout)
    assert ["Tilstand", str(d.initial)] in rows
    assert ["Pilot", f"{pilot} v{d.version}"] in rows
    from_initial = {t.trigger for t in d.transitions if d.initial in t.sources}
    assert from_initial <= {row[0] for row in rows}
    assert any(row[:3] == ["1", row[1], "opened"] for row in rows)


def test_cases_list_pages_with_after(library: Coordinator, migrated: str) -> None:
    pilot = REGISTRY.keys()[0]
    opened = {str(open_case(library, pilot)) for _ in range(3)}
    first = invoke(migrated, "cases", "list", "--pilot", pilot, "--limit", "2")
    assert first.exit_code == 0, first.output
    page1 = [row[0] for row in table_rows(first.stdout)]
    assert len(page1) == 2
    assert f"Neste side: --after {page1[-1]}" in first.stdout
    second = invoke(migrated, "cases", "list", "--pilot", pilot, "--limit", "2",
                    "--after", page1[-1])
    page2 = [row[0] for row in table_rows(second.stdout)]
    assert len(page2) == 1 and "Neste side" not in second.stdout
    assert set(page1 + page2) == opened
    other = REGISTRY.keys()[1]                   # pilot is keys()[0]
    assert "Ingen saker." in invoke(migrated, "cases", "list", "--pilot", other).stdout


@pytest.mark.skipif(not MIGRATIONS, reason="no definition declares a migration yet")
def test_cases_migrate_moves_a_case_onto_the_new_version(migrated: str, clock: FakeClock) -> None:
    key, version = MIGRATIONS[0]
    target = REGISTRY.get(key, version).definition
    assert target.migrates_from is not None
    old = REGISTRY.get(key, target.migrates_from.from_version).definition
    engine = make_engine(migrated)
    try:
        on_old = build(engine=engine, clock=clock,
                       workflows=WorkflowRegistry([(f"{key}_v{old.version}", old)]))
        case_id = open_case(on_old, key)
        dry = invoke(migrated, "cases", "migrate", "--pilot", key, "--to", str(version),
                     "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "1 kan flyttes" in dry.stdout and str(case_id) in dry.stdout
        assert on_old.summary(case_id).workflow_version == old.version     # nothing moved
        real = invoke(migrated, "cases", "migrate", "--pilot", key, "--to", str(version))
        assert real.exit_code == 0, real.output
        assert "Flyttet 1 av 1 saker." in real.stdout
        assert on_old.summary(case_id).workflow_version == version
        assert [e.kind for e in on_old.history(case_id)][-1] == "migrated"
    finally:
        engine.dispose()


def test_demo_load_if_empty_loads_once(library: Coordinator, migrated: str) -> None:
    first = invoke(migrated, "demo", "load", "--if-empty")
    assert first.exit_code == 0, first.output
    loaded = library.count_cases()
    assert loaded > 0 and f"Lastet {loaded} demosaker." in first.stdout
    again = invoke(migrated, "demo", "load", "--if-empty")
    assert again.exit_code == 0 and "allerede" in again.stdout
    assert library.count_cases() == loaded


# -- reminders ------------------------------------------------------------------------------
def test_reminders_overdue_lists_late_kartlegging_and_worker_once_sends_them(
        env: dict[str, str], migrated: str, library: Coordinator, clock: FakeClock) -> None:
    from datetime import UTC, datetime

    clock.set(datetime(2024, 3, 1, 8, 0, tzinfo=UTC))        # long ago: overdue by now
    late = open_case(library, "ha")
    on_time = open_case(library, "ringsaker")                  # no deadline before the plan
    result = invoke(migrated, "reminders", "overdue", "--pilot", "ha")
    assert result.exit_code == 0, result.output
    assert [(r[0], r[1], r[3]) for r in table_rows(result.output)] == [
        ("ha", str(late), "kartlegging")]
    assert str(on_time) not in invoke(migrated, "reminders", "overdue").output
    sent = run(env, "worker", "--once")
    assert sent.returncode == 0, sent.stderr
    assert "Sendt 2," in sent.stdout                           # due soon + overdue, in-app
    assert "Ingen meldinger har gitt opp." in invoke(migrated, "reminders", "dead").output


def test_reminders_bad_arguments_are_one_line(env: dict[str, str], migrated: str) -> None:
    line = assert_one_error_line(run(env, "reminders", "overdue", "--pilot", "atlantis"))
    assert "atlantis" in line
    line = assert_one_error_line(run(env, "reminders", "retry", "nope"))
    assert "nope" in line
    line = assert_one_error_line(run(env, "reminders", "retry", str(uuid.uuid4())))
    assert "fant ingen melding" in line
