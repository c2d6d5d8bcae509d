"""The ``coordinator`` command line: the only importer of typer and rich.

Every command builds what it needs from ``Settings`` (``COORDINATOR_DATABASE_URL``,
``COORDINATOR_DATA_DIR``; default SQLite in ``var/coordinator.db``) and calls the same
``Coordinator`` facade as the HTTP API. Any error, bad argument or unreachable database
prints one line, ``Feil: ...``, on stderr and exits non-zero; never a traceback (set
``COORDINATOR_DEBUG=1`` to get one).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, NoReturn
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from coordinator.bootstrap import build
from coordinator.cases.commands import CaseView, MigrationReport
from coordinator.cases.model import SYSTEM
from coordinator.config import Settings
from coordinator.errors import (
    CaseErased,
    CaseNotFound,
    ConcurrentUpdate,
    CoordinatorError,
    InvalidDefinition,
    InvalidInput,
    MigrationBlocked,
    ReminderNotFound,
    UnknownWorkflow,
)
from coordinator.persistence import migrate
from coordinator.persistence.database import make_engine
from coordinator.service import Coordinator
from coordinator.workflows import diagrams
from coordinator.workflows.deadlines import OSLO
from coordinator.workflows.definition import State
from coordinator.workflows.registry import WorkflowRegistry

USAGE_ERROR = 2
_DB_MODULES = frozenset({"sqlalchemy", "alembic", "psycopg", "sqlite3"})


class CliError(Exception):
    """A bad argument found by the CLI itself; ``message`` is user-facing (bokmål)."""

    def __init__(self, message: str, exit_code: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# -- errors: one line on stderr ---------------------------------------------------------
def _norwegian(exc: CoordinatorError) -> str:
    d = exc.details
    if isinstance(exc, CaseNotFound):
        return f"fant ingen sak med id {d.get('case_id')}"
    if isinstance(exc, UnknownWorkflow):
        if "version" in d:
            return f"fant ingen arbeidsflyt «{d.get('key')}» versjon {d.get('version')}"
        return f"fant ingen pilot med navn «{d.get('key')}» (se `coordinator pilots list`)"
    if isinstance(exc, MigrationBlocked):
        return (f"{d.get('pilot')} v{d.get('version')} beskriver ingen migrering fra en "
                f"eldre versjon")
    if isinstance(exc, ConcurrentUpdate):
        return "saken ble endret av noen andre samtidig; prøv igjen"
    if isinstance(exc, CaseErased):
        return f"dokumentene i sak {d.get('case_id')} er slettet (nøklene er makulert)"
    if isinstance(exc, InvalidInput):
        return f"ugyldig inndata: {exc.message}"
    if isinstance(exc, ReminderNotFound):
        return f"fant ingen melding som har gitt opp med id {d.get('reminder_id')}"
    if isinstance(exc, InvalidDefinition):
        return f"ugyldig arbeidsflytdefinisjon: {exc.message}"
    return exc.message


def _database_problem(exc: BaseException) -> str | None:
    """One line for an error raised by the database stack, or None if it is not one."""
    if not {c.__module__.split(".")[0] for c in type(exc).__mro__} & _DB_MODULES:
        return None
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if "no such table" in first or ("relation" in first and "does not exist" in first):
        return f"databasen er ikke satt opp ({first}); kjør `coordinator db upgrade` først"
    if "OperationalError" in {c.__name__ for c in type(exc).__mro__}:
        return f"databasen svarer ikke: {first}"
    return f"databasefeil: {first}"


def _describe(exc: Exception) -> tuple[str, int]:
    """The user-facing line and exit code for ``exc``."""
    if isinstance(exc, CliError):
        return exc.message, exc.exit_code
    if isinstance(exc, CoordinatorError):
        return _norwegian(exc), 1
    usage = getattr(exc, "format_message", None)
    if callable(usage) and hasattr(exc, "exit_code"):        # click's usage errors
        return f"{usage()} (se --help)", USAGE_ERROR
    if (db := _database_problem(exc)) is not None:
        return db, 1
    if isinstance(exc, ModuleNotFoundError) and exc.name == "coordinator.demo":
        return "demodata finnes ikke i denne versjonen (coordinator.demo mangler)", 1
    return f"uventet feil ({type(exc).__name__}): {exc}", 1


def _fail(message: str, code: int) -> NoReturn:
    line = " ".join(message.split())
    typer.echo(f"Feil: {line}", err=True)
    raise typer.Exit(code)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if exc.__class__.__name__ == "NoArgsIsHelpError":
            raise typer.Exit(0) from None       # typer has already printed the help
        if os.environ.get("COORDINATOR_DEBUG"):
            raise
        _fail(*_describe(exc))


class _Root(TyperGroup):
    """Runs every subcommand (and its argument parsing) under ``_one_line_errors``."""

    def invoke(self, ctx: Any) -> Any:
        with _one_line_errors():
            return super().invoke(ctx)


app = typer.Typer(
    name="coordinator", cls=_Root, pretty_exceptions_enable=False, no_args_is_help=True,
    add_completion=False,
    help="Samtykkestyrt saksoppfølging mellom Nav og helse for pilotene i «arbeid og helse».",
)
db_app = typer.Typer(help="Databasen: migreringer.", no_args_is_help=True)
demo_app = typer.Typer(help="Demodata.", no_args_is_help=True)
pilots_app = typer.Typer(help="Pilotene og deres arbeidsflyter.", no_args_is_help=True)
workflow_app = typer.Typer(help="Arbeidsflytdefinisjoner.", no_args_is_help=True)
case_app = typer.Typer(help="Én sak.", no_args_is_help=True)
audit_app = typer.Typer(help="Revisjonsloggen: verifisering, sjekkpunkter og uttrekk.",
                        no_args_is_help=True)
cases_app = typer.Typer(help="Mange saker: liste og migrering.", no_args_is_help=True)
reminders_app = typer.Typer(help="Påminnelser: forfalte frister og meldinger som ga opp.",
                            no_args_is_help=True)
keys_app = typer.Typer(help="Krypteringsnøkler: rotasjon og pensjonering.",
                       no_args_is_help=True)
for _sub, _name in ((db_app, "db"), (demo_app, "demo"), (pilots_app, "pilots"),
                    (workflow_app, "workflow"), (case_app, "case"), (cases_app, "cases"),
                    (reminders_app, "reminders"), (audit_app, "audit"), (keys_app, "keys")):
    app.add_typer(_sub, name=_name)


def main() -> None:
    """Console-script entry point (``coordinator``)."""
    try:
        with _one_line_errors():        # here for errors outside any subcommand (root options)
            result = app(prog_name="coordinator", standalone_mode=False)
    except (typer.Exit, typer.Abort) as exc:
        result = getattr(exc, "exit_code", 1)
    raise SystemExit(result if isinstance(result, int) else 0)


# -- helpers ------------------------------------------------------------------------------
def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


@contextmanager
def _database() -> Iterator[tuple[str, Any]]:
    """The configured database URL and an engine on it, closed afterwards."""
    settings = Settings()
    engine = make_engine(settings.resolved_database_url, pool_size=settings.pool_size)
    try:
        yield settings.resolved_database_url, engine
    finally:
        engine.dispose()


@contextmanager
def _coordinator() -> Iterator[Coordinator]:
    with _database() as (_, engine):
        yield build(Settings(), engine=engine)


def _uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise CliError(f"«{value}» er ikke en gyldig {what}") from None


def _when(moment: datetime | None) -> str:
    return moment.astimezone(OSLO).strftime("%Y-%m-%d %H:%M") if moment else "–"


def _table(title: str | None, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _row(table: Table, *cells: object) -> None:
    table.add_row(*(Text("–" if c is None else str(c)) for c in cells))


def _mask(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


# -- db -----------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Kjør databasemigreringene fram til nyeste revisjon."""
    with _database() as (url, engine):
        migrate.upgrade(engine)
        revision = migrate.current(engine)
    typer.echo(f"Databasen {_mask(url)} er på revisjon {revision}.")


@db_app.command("current")
def db_current() -> None:
    """Vis databasens revisjon og om den er den nyeste."""
    with _database() as (url, engine):
        revision = migrate.current(engine)
    head = migrate.head()
    if revision is None:
        typer.echo(f"Databasen {_mask(url)} har ingen revisjon; kjør `coordinator db upgrade`.")
    elif revision == head:
        typer.echo(f"{revision} (nyeste)")
    else:
        typer.echo(f"{revision} (nyeste er {head}; kjør `coordinator db upgrade`)")


# -- demo ---------------------------------------------------------------------------------
@demo_app.command("load")
def demo_load(
    if_empty: Annotated[bool, typer.Option("--if-empty",
                                           help="Gjør ingenting hvis det finnes saker.")] = False,
) -> None:
    """Last syntetiske demosaker for alle pilotene."""
    with _coordinator() as coordinator:
        if if_empty and (existing := coordinator.count_cases()) > 0:
            typer.echo(f"Databasen har allerede {existing} saker; laster ikke demodata.")
            return
        from coordinator.demo import load_demo

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("Laster demodata", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            count = load_demo(coordinator, progress=on_progress)
    typer.echo(f"Lastet {count} demosaker.")


# -- serve --------------------------------------------------------------------------------
class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Adresse å lytte på.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Antall prosesser.")] = 1,
    log_level: Annotated[LogLevel, typer.Option(help="Loggnivå.")] = LogLevel.info,
) -> None:
    """Start HTTP-tjenesten (OpenAPI på /docs)."""
    import uvicorn

    from coordinator.http.app import create_app
    from coordinator.logging import configure

    common: dict[str, Any] = {"host": host, "port": port, "log_config": None,
                              "access_log": False, "log_level": str(log_level)}
    with _coordinator() as coordinator:
        coordinator.ping()                  # a bad database is one line here, not a traceback
        configure(str(log_level))
        typer.echo(f"Serverer på http://{host}:{port} (dokumentasjon: /docs)", err=True)
        if workers == 1:
            uvicorn.run(create_app(coordinator), **common)
            return
    os.environ["COORDINATOR_LOG_LEVEL"] = str(log_level)    # for the worker processes
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("coordinator.http.app:create_app_from_settings", factory=True,
                            workers=workers, **common)
    Multiprocess(config, sockets=[_tcp_socket(host, port)]).run()


def _tcp_socket(host: str, port: int) -> socket.socket:
    """The listening socket for several worker processes, bound with ``IPPROTO_TCP``.

    uvicorn binds it with protocol 0, and asyncio sets ``TCP_NODELAY`` only on connections
    whose socket says TCP: without it every response waited about 40 ms for the client's
    delayed ACK (Nagle), against about 2 ms with one worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CliError(f"kan ikke lytte på {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


# -- pilots and workflows -------------------------------------------------------------------
@pilots_app.command("list")
def pilots_list() -> None:
    """Vis pilotene med modell og definisjonsversjoner."""
    registry = WorkflowRegistry.builtin()
    table = _table(None, "Pilot", "Tittel", "Modell", "Siste versjon", "Versjoner")
    keys = registry.keys()
    for key in keys:
        latest = registry.latest(key).definition
        versions = sorted(w.definition.version for w in registry.all() if w.definition.key == key)
        _row(table, key, latest.title, latest.model, latest.version,
             ", ".join(map(str, versions)))
    _console().print(table)


class DiagramFormat(StrEnum):
    mermaid = "mermaid"
    text = "text"


@workflow_app.command("show")
def workflow_show(
    pilot: Annotated[str, typer.Argument(help="Pilotens nøkkel, f.eks. ringsaker.")],
    version: Annotated[int | None, typer.Option(help="Versjon (standard: nyeste).")] = None,
    fmt: Annotated[DiagramFormat, typer.Option("--format", help="mermaid eller text.")
                   ] = DiagramFormat.text,
) -> None:
    """Vis tilstandsdiagrammet til en pilots arbeidsflyt."""
    registry = WorkflowRegistry.builtin()
    workflow = registry.latest(pilot) if version is None else registry.get(pilot, version)
    render = diagrams.mermaid if fmt is DiagramFormat.mermaid else diagrams.text
    sys.stdout.write(render(workflow.definition))


# -- cases ----------------------------------------------------------------------------------
def _print_view(view: CaseView, console: Console) -> None:
    s = view.summary
    console.print(Text(f"Sak {s.id}", style="bold"))
    facts = _table(None, "Felt", "Verdi")
    for label, value in (("Pilot", f"{s.pilot} v{s.workflow_version}"), ("Tilstand", s.state),
                         ("Versjon", s.version), ("Henvist av", s.referrer),
                         ("Henvist", _when(s.referred_at)), ("Oppdatert", _when(s.updated_at)),
                         ("Avsluttet", _when(s.closed_at))):
        _row(facts, label, value)
    console.print(facts)
    deadlines = _table("Frister (Oslo-tid)", "Frist", "Status", "Forfaller", "Oppfylt")
    for d in view.deadlines:
        _row(deadlines, d.name, d.status, _when(d.due_at), _when(d.met_at))
    console.print(deadlines if view.deadlines else Text("Frister: ingen"))
    actions = _table("Neste handlinger", "Handling", "Tillatt", "Til", "Hvorfor ikke")
    for a in view.actions:
        _row(actions, a.trigger, "ja" if a.allowed else "nei", ", ".join(a.targets),
             "; ".join(a.failed_guards) or None)
    console.print(actions if view.actions else Text("Neste handlinger: ingen (avsluttet)"))
    history = _table("Historikk", "#", "Tid", "Hendelse", "Handling", "Fra", "Til", "Aktør",
                     "Begrunnelse")
    for e in view.history:
        _row(history, e.seq, _when(e.occurred_at), e.kind, e.trigger, e.from_state, e.to_state,
             f"{e.actor_id} ({e.actor_role})", e.reason)
    console.print(history)


@case_app.command("show")
def case_show(case_id: Annotated[str, typer.Argument(metavar="ID", help="Sakens id.")]) -> None:
    """Vis en sak: tilstand, frister, mulige handlinger (og hvorfor ikke) og historikk."""
    uid = _uuid(case_id, "saks-id (UUID)")
    with _coordinator() as coordinator:
        view = coordinator.view(uid)
    _print_view(view, _console())


@cases_app.command("list")
def cases_list(
    pilot: Annotated[str | None, typer.Option(help="Bare denne piloten.")] = None,
    state: Annotated[str | None, typer.Option(help="Bare denne tilstanden.")] = None,
    after: Annotated[str | None, typer.Option(help="Neste side: saker etter denne id-en.")
                     ] = None,
    limit: Annotated[int, typer.Option(help="Saker per side (1–500).")] = 50,
) -> None:
    """List saker sortert etter id, én side om gangen."""
    if pilot is not None:
        WorkflowRegistry.builtin().latest(pilot)     # an unknown pilot is an error
    if state is not None and state not in set(State):
        raise CliError(f"ukjent tilstand «{state}»; gyldige er {', '.join(State)}")
    if not 1 <= limit <= 500:
        raise CliError("--limit må være mellom 1 og 500")
    after_id = _uuid(after, "id (UUID) for --after") if after is not None else None
    with _coordinator() as coordinator:
        page = coordinator.list_cases(pilot=pilot, state=state, after=after_id, limit=limit)
    console = _console()
    if not page:
        console.print("Ingen saker.")
        return
    table = _table(None, "Id", "Pilot", "Tilstand", "Versjon", "Henvist", "Oppdatert")
    for s in page:
        _row(table, s.id, f"{s.pilot} v{s.workflow_version}", s.state, s.version,
             _when(s.referred_at), _when(s.updated_at))
    console.print(table)
    if len(page) == limit:
        console.print(Text(f"Neste side: --after {page[-1].id}"))


def _print_migration(report: MigrationReport, console: Console) -> None:
    mode = "prøvekjøring, ingenting endres" if report.dry_run else "utført"
    console.print(Text(f"Migrering av {report.pilot} v{report.from_version} → "
                       f"v{report.to_version} ({mode}): {len(report.movable)} kan flyttes, "
                       f"{len(report.blocked)} er blokkert."))
    if report.movable or report.blocked:
        table = _table(None, "Sak", "Fra", "Til", "Årsak")
        for item in (*report.movable, *report.blocked):
            _row(table, item.case_id, item.from_state, item.to_state or "blokkert", item.reason)
        console.print(table)
    if not report.dry_run:
        console.print(Text(f"Flyttet {report.moved} av {len(report.movable)} saker."))


@cases_app.command("migrate")
def cases_migrate(
    pilot: Annotated[str, typer.Option(help="Piloten som skal migreres.")],
    to: Annotated[int, typer.Option("--to", help="Målversjon.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Bare vis hva som ville skjedd.")
                       ] = False,
) -> None:
    """Flytt løpende saker til en nyere definisjonsversjon (en commit per sak)."""
    with _coordinator() as coordinator:
        report = coordinator.migrate(pilot, to, dry_run=dry_run)
    _print_migration(report, _console())


@cases_app.command("erase")
def cases_erase(
    case_id: Annotated[str, typer.Argument(metavar="ID", help="Sakens id.")],
    reason: Annotated[str, typer.Option("--reason", help="Hvorfor (lagres i revisjonsloggen).")],
    yes: Annotated[bool, typer.Option("--yes", help="Ikke spør om bekreftelse.")] = False,
) -> None:
    """Slett sakens innhold for godt: dokumentene og datanøklene slettes
    (kryptografisk makulering), kartleggingsskjemaer og resultatmål slettes, og fritekst i
    sakshistorikken fjernes. Revisjonsloggen beholdes og verifiseres fortsatt."""
    target = _uuid(case_id, "saks-id (UUID)")
    if not reason.strip():
        raise CliError("--reason kan ikke være tom")
    if not yes and not typer.confirm(
            f"Slette alle dokumentene, skjemaene og resultatmålene i sak {target} for godt? "
            "Det kan ikke angres", err=True):
        raise CliError("avbrutt; ingenting er slettet", 1)
    with _coordinator() as coordinator:
        report = coordinator.documents.erase(target, actor=SYSTEM, reason=reason)
    if report.already:
        typer.echo(f"Sak {target} var allerede slettet ({_when(report.erased_at)}).")
        return
    typer.echo(f"Sak {target} er slettet: {report.documents} dokumenter og {report.keys} "
               f"datanøkler er borte, {report.forms} skjemaer og {report.measures} "
               f"resultatmål er slettet, og fritekst er fjernet fra {report.events} "
               f"hendelser; slettingen står i revisjonsloggen.")


# -- keys -----------------------------------------------------------------------------------
_PHASES = {"rewrap": "Pakker om datanøkler", "data_keys": "Lager nye datanøkler",
           "documents": "Krypterer dokumenter på nytt"}


@keys_app.command("rotate")
def keys_rotate(
    reencrypt: Annotated[bool, typer.Option(
        "--reencrypt", help="Lag også nye datanøkler og krypter dokumentene på nytt.")] = False,
    batch: Annotated[int, typer.Option("--batch", help="Nøkler eller dokumenter per "
                                       "transaksjon (1–10000).")] = 100,
    pause: Annotated[float, typer.Option("--pause", help="Sekunder å vente mellom "
                                         "transaksjonene (skåner en travel database).")] = 0.0,
) -> None:
    """Lag en ny nøkkelkrypteringsnøkkel (KEK) og pakk alle datanøkler om under den.
    Kan kjøres på nytt: en avbrutt rotasjon fortsetter der den stoppet."""
    if pause < 0:
        raise CliError("--pause kan ikke være negativ")
    with _coordinator() as coordinator, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            console=Console(stderr=True)) as progress:
        tasks: dict[str, Any] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(_PHASES.get(phase, phase), total=total)
            progress.update(tasks[phase], completed=done, total=max(total, done))

        report = coordinator.key_rotation(
            batch=batch, progress=on_progress,
            between_batches=(lambda: time.sleep(pause)) if pause else None,
        ).rotate(reencrypt=reencrypt)
    start = "Fortsatte en avbrutt rotasjon" if report.resumed else "Rotasjon fullført"
    typer.echo(f"{start}: {report.rewrapped} datanøkler pakket om under {report.kek_id}.")
    if report.kind == "reencrypt":
        typer.echo(f"{report.data_keys} nye datanøkler, {report.documents} dokumenter kryptert "
                   f"på nytt, {report.destroyed} gamle datanøkler slettet.")
    if reencrypt and report.kind != "reencrypt":
        typer.echo("Den avbrutte rotasjonen var uten --reencrypt; kjør kommandoen igjen for "
                   "å lage nye datanøkler.")
    for old in report.old_keks:
        typer.echo(f"Den gamle nøkkelen {old} kan pensjoneres: coordinator keys retire {old}")


@keys_app.command("retire")
def keys_retire(
    kek_id: Annotated[str, typer.Argument(metavar="KEK", help="Id-en til en gammel KEK.")],
) -> None:
    """Glem en gammel KEK (nektes så lenge en datanøkkel er pakket under den)."""
    with _coordinator() as coordinator:
        coordinator.key_rotation().retire(kek_id)
    typer.echo(f"Nøkkelen {kek_id} er pensjonert.")


# -- reminders and the worker --------------------------------------------------------------
@app.command("worker")
def worker(
    once: Annotated[bool, typer.Option("--once", help="Send det som er forfalt, og avslutt.")
                    ] = False,
) -> None:
    """Send påminnelser og varsler fra utboksen (APScheduler utløser hvert tikk)."""
    from coordinator.bootstrap import build_dispatcher
    from coordinator.clock import SystemClock
    from coordinator.logging import configure
    from coordinator.scheduling import runner

    settings = Settings()
    with _database() as (_, engine):
        dispatcher = build_dispatcher(settings, engine=engine)
        dispatcher.store.dead(limit=1)          # a bad database is one line here
        if once:
            report = dispatcher.dispatch_due()
            typer.echo(f"Sendt {report.sent}, nye forsøk {report.retried}, "
                       f"ga opp {report.dead}.")
            return
        configure("info")
        typer.echo(f"Arbeider {dispatcher.worker} sender hvert "
                   f"{settings.worker_tick_seconds:g}. sekund (stopp med Ctrl+C).", err=True)
        also: list[tuple[str, Callable[[], None], float]] = []
        if settings.checkpoint_every_minutes > 0:
            every = timedelta(minutes=settings.checkpoint_every_minutes)
            # checked four times per interval: whichever worker takes it, a checkpoint is
            # at most a quarter interval late
            job = _scheduled_checkpoint(build(settings, engine=engine), every)
            also.append(("audit_checkpoint", job, max(1.0, every.total_seconds() / 4)))
        runner.run(dispatcher.dispatch_due, tick_seconds=settings.worker_tick_seconds,
                   first_run=SystemClock().now(), also=also)


def _scheduled_checkpoint(coordinator: Coordinator, every: timedelta) -> Callable[[], None]:
    log = logging.getLogger("coordinator.worker")

    def checkpoint() -> None:
        try:
            cp = coordinator.checkpoint_audit_if_due(every)
        except CoordinatorError as exc:
            log.warning("audit checkpoint failed", extra={"code": exc.code})
            return
        if cp is not None:
            log.info("audit checkpoint", extra={"seq": cp.seq, "streams": cp.stream_count,
                                                "events": cp.event_count})

    return checkpoint


@reminders_app.command("overdue")
def reminders_overdue(
    pilot: Annotated[str | None, typer.Option(help="Bare denne piloten.")] = None,
) -> None:
    """Vis saker med frister som er passert uten å være oppfylt, per pilot."""
    with _coordinator() as coordinator:
        items = coordinator.meetings.overdue(pilot)
    console = _console()
    if not items:
        console.print("Ingen forfalte frister.")
        return
    table = _table(None, "Pilot", "Sak", "Tilstand", "Frist", "Forfalt (Oslo-tid)")
    for i in items:
        _row(table, i.pilot, i.case_id, i.state, i.deadline, _when(i.due_at))
    console.print(table)
    console.print(Text(f"{len(items)} forfalte frister."))


@reminders_app.command("dead")
def reminders_dead(
    pilot: Annotated[str | None, typer.Option(help="Bare denne piloten.")] = None,
) -> None:
    """Vis meldinger som ga opp etter for mange mislykkede forsøk."""
    if pilot is not None:
        WorkflowRegistry.builtin().latest(pilot)
    with _coordinator() as coordinator:
        rows = coordinator.meetings.dead_letters(pilot)
    console = _console()
    if not rows:
        console.print("Ingen meldinger har gitt opp.")
        return
    table = _table(None, "Id", "Pilot", "Sak", "Type", "Kanal", "Forsøk", "Siste feil")
    for r in rows:
        _row(table, r.id, r.pilot, r.case_id, r.kind, r.channel, r.attempts, r.last_error)
    console.print(table)


@reminders_app.command("retry")
def reminders_retry(
    reminder_id: Annotated[str, typer.Argument(metavar="ID", help="Meldingens id.")],
) -> None:
    """Prøv en melding som ga opp, på nytt."""
    uid = _uuid(reminder_id, "meldings-id (UUID)")
    with _coordinator() as coordinator:
        row = coordinator.meetings.requeue(uid)
    typer.echo(f"Melding {row.id} er lagt i kø igjen.")
# -- audit ----------------------------------------------------------------------------------
_PROBLEMS = {
    "sequence": "hendelser mangler eller er byttet om",
    "link": "lenken til forrige hendelse er brutt (slettet, byttet eller forfalsket hendelse)",
    "hash": "innholdet er endret (hash stemmer ikke)",
    "body": "innholdet er ikke gyldig JSON",
    "column": "en kolonne er endret (stemmer ikke med innholdet)",
    "checkpoint-head": "avviker fra hodet et signert sjekkpunkt registrerte",
    "truncated": "kjeden er avkortet under et signert sjekkpunkt",
    "head": "kjeden slutter ikke ved lagret hode (avkortet hale eller endret hode)",
    "missing": "strømmen er slettet",
    "checkpoint-missing": "et sjekkpunkt mangler",
    "checkpoint-link": "sjekkpunktet lenker ikke til forrige sjekkpunkt",
    "checkpoint-hash": "sjekkpunktets felt er endret",
    "checkpoint-signature": "sjekkpunktets signatur er ugyldig (forfalsket)",
    "checkpoint-delta": "sjekkpunktets registrerte hoder er endret",
    "checkpoint-root": "Merkle-roten stemmer ikke med de registrerte hodene",
}


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"«{value}» er ikke en dato (ÅÅÅÅ-MM-DD eller ISO 8601)") from None
    return moment.replace(tzinfo=OSLO) if moment.tzinfo is None else moment


@audit_app.command("verify")
def audit_verify(
    case: Annotated[str | None, typer.Option("--case", help="Bare denne sakens kjede.")
                    ] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Bare hendelser etter siste sjekkpunkt før denne datoen.")] = None,
    jobs: Annotated[int, typer.Option(
        "--jobs", min=1, max=64, help="Prosesser for full verifisering (PostgreSQL).")] = 1,
) -> None:
    """Verifiser hash-kjedene og de signerte sjekkpunktene (exit 0 når alt er intakt)."""
    case_id = _uuid(case, "saks-id (UUID)") if case is not None else None
    start = _since(since)
    with _coordinator() as coordinator:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("Verifiserer revisjonsloggen", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=max(total, done))

            report = coordinator.verify_audit(case_id=case_id, since=start,
                                              progress=on_progress, jobs=jobs)
    if report.first is not None:
        p = report.first
        raise CliError(f"revisjonsloggen er brutt ved {p.where}: "
                       f"{_PROBLEMS.get(p.code, p.message)} ({len(report.problems)} funn)", 1)
    typer.echo(f"Revisjonsloggen er intakt: {report.events} hendelser i {report.streams} "
               f"kjeder, {report.checkpoints} signerte sjekkpunkter.")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Signer et sjekkpunkt over alle kjedehodene (Ed25519)."""
    with _coordinator() as coordinator:
        cp = coordinator.checkpoint_audit()
    typer.echo(f"Sjekkpunkt {cp.seq}: {cp.stream_count} kjeder, {cp.event_count} hendelser, "
               f"rot {cp.root[:16]}…, nøkkel {cp.key_id}.")


class ExtractFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


@audit_app.command("extract")
def audit_extract(
    fmt: Annotated[ExtractFormat, typer.Option("--format", help="jsonl eller csv.")
                   ] = ExtractFormat.jsonl,
    case: Annotated[str | None, typer.Option("--case", help="Bare denne saken.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Bare hendelser fra denne "
                                                             "datoen.")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o",
                                               help="Fil (standard: stdout).")] = None,
) -> None:
    """Skriv et uttrekk av revisjonsloggen som JSON Lines eller CSV."""
    from coordinator.audit import extract

    case_id = _uuid(case, "saks-id (UUID)") if case is not None else None
    start = _since(since)
    with _coordinator() as coordinator:
        events = coordinator.audit_extract(case_id=case_id, since=start)
        lines = extract.jsonl(events) if fmt is ExtractFormat.jsonl else extract.csv_lines(
            events)
        if output is None:
            try:
                for line in lines:
                    sys.stdout.write(line)
                sys.stdout.flush()
            except BrokenPipeError:         # `… | head`: the reader has had enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        with open(output, "w", encoding="utf-8", newline="") as f:
            count = sum(1 for line in lines if f.write(line) >= 0)
    typer.echo(f"Skrev {count - (fmt is ExtractFormat.csv)} hendelser til {output}.",
               err=True)


# -- development tokens ---------------------------------------------------------------------
_ORGNR = re.compile(r"^[0-9]{9}$")


def _check_dev_token_args(role: str, sub: str, org: str | None, pilot: str | None) -> None:
    from coordinator.http.auth import USER_ROLES

    if role not in USER_ROLES:
        raise CliError(f"ukjent rolle «{role}»; gyldige roller: {', '.join(sorted(USER_ROLES))}")
    if not sub.strip() or len(sub) > 200:
        raise CliError("--sub må være en ikke-tom id på høyst 200 tegn")
    if org is not None and not _ORGNR.match(org):
        raise CliError(f"«{org}» er ikke et organisasjonsnummer (ni sifre)")
    if pilot is not None and pilot not in set(WorkflowRegistry.builtin().keys()):
        raise CliError(f"fant ingen pilot med navn «{pilot}» (se `coordinator pilots list`)")


@app.command("dev-token")
def dev_token(
    role: Annotated[str, typer.Option(help="Rollen, f.eks. nav_veileder eller bruker.")],
    sub: Annotated[str, typer.Option(help="Brukerens id (tokenets «sub»).")],
    org: Annotated[str | None, typer.Option(help="Organisasjonsnummer (ni sifre).")] = None,
    pilot: Annotated[str | None, typer.Option(help="Piloten brukeren arbeider i.")] = None,
    ttl_minutes: Annotated[int, typer.Option(min=1, max=1440, help="Levetid i minutter.")
                           ] = 60,
) -> None:
    """Lag et token fra den lokale utviklingsutstederen (skriver bare tokenet til stdout).

    Bare for utvikling: produksjon slår utstederen av (COORDINATOR_DEV_ISSUER_ENABLED=false).
    """
    from coordinator.clock import SystemClock
    from coordinator.crypto import signing
    from coordinator.http.auth import dev_claims

    _check_dev_token_args(role, sub, org, pilot)
    settings = Settings()
    if not settings.dev_issuer_active:
        raise CliError("utviklingsutstederen er slått av (COORDINATOR_DEV_ISSUER_ENABLED)", 1)
    try:
        key = signing.load_or_create_dev_key(settings.data_dir)
    except signing.KeyFileError as exc:
        raise CliError(str(exc), 1) from None
    claims = dev_claims(sub=sub, role=role, org=org, pilot=pilot,
                        audience=settings.api_audience, now=SystemClock().now().timestamp(),
                        ttl_seconds=ttl_minutes * 60)
    typer.echo(signing.mint_dev_token(key, claims))
