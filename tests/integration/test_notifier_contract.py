"""One contract for every ``Notifier``: the fake (``RecordingNotifier``) and the real SMTP
adapter against a real aiosmtpd server, whose received mail is parsed back, .ics included;
and the fake and the Nav webhook adapter against a real ``http.server`` that verifies the
HMAC signature of every request.

What a notifier must do: accept each message once under its outbox id, deliver to the
recipient, carry only a link and a time (no health details), and for meeting notices an
invitation whose UID, SEQUENCE, method and times match.
"""

from __future__ import annotations

import email
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from icalendar import Calendar

from adapters.nav_webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    verify,
)
from adapters.smtp_email import SmtpNotifier, message_id
from coordinator.scheduling import nav
from coordinator.scheduling.messages import render
from coordinator.scheduling.outbox import EMAIL, NOTICE, RULE, OutboxRow, OutgoingMessage
from coordinator.testing import RecordingNotifier

BASE = "https://koordinator.example.no"
CASE = uuid.UUID("00000000-0000-4000-8000-000000000001")
STARTS = datetime(2027, 3, 30, 8, 0, tzinfo=UTC)            # 10:00 in Oslo (CEST)
# Words that would reveal health or programme details if they reached an inbox.
SENSITIVE = ("bli kjent", "kartlegging", "fastlege", "terapeut", "psykisk", "ha", "Hå",
             "pilot", "get_to_know", "helse", "diagnos")


@dataclass(frozen=True)
class Received:
    id: uuid.UUID
    to: str
    subject: str
    body: str
    invite: dict[str, Any] | None


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any,
                          address: str, rcpt_options: list[str]) -> str:
        if address.startswith("refused@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Collect, int]]:
    handler = _Collect()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _from_mail(m: Message) -> Received:
    text, invite = "", None
    for part in m.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()           # type: ignore[union-attr]
        elif part.get_content_type() == "text/calendar":
            cal = Calendar.from_ical(part.get_payload(decode=True))
            [event] = cal.walk("VEVENT")
            invite = {"method": str(cal["METHOD"]), "uid": str(event["UID"]),
                      "sequence": int(event["SEQUENCE"]),
                      "start": event.decoded("DTSTART"), "end": event.decoded("DTEND"),
                      "summary": str(event["SUMMARY"])}
    mid = str(m["Message-ID"]).strip("<>").split("@")[0]
    return Received(uuid.UUID(mid), str(m["To"]), str(m["Subject"]), text, invite)


def _from_fake(m: OutgoingMessage) -> Received:
    inv = m.invite
    invite = None if inv is None else {
        "method": inv.method, "uid": inv.uid, "sequence": inv.sequence,
        "start": inv.starts_at, "end": inv.ends_at, "summary": inv.summary}
    return Received(m.id, m.recipient, m.subject, m.body, invite)


Channel = tuple[Any, Callable[[], list[Received]], str]


@pytest.fixture(params=["fake", "smtp"])
def channel(request: pytest.FixtureRequest) -> Channel:
    """(notifier, what arrived, how the recipient 'nav-1' is addressed)."""
    if request.param == "fake":
        fake = RecordingNotifier(fail_for=frozenset({"refused"}))
        return fake, lambda: [_from_fake(m) for m in fake.messages.values()], "nav-1"
    server, port = request.getfixturevalue("smtp_server")
    smtp = SmtpNotifier("127.0.0.1", port, sender="ikke-svar@example.no",
                        recipient_domain="nav.example.no")
    return smtp, lambda: [_from_mail(m) for m in server.messages], "nav-1@nav.example.no"


def row(kind: str, *, source: str = NOTICE, sequence: int = 0,
        recipient: str = "nav-1") -> OutboxRow:
    payload = {"meeting_id": "7f0c7a30-1c1e-4d5e-9e7a-2d0f5b2a9c11",
               "meeting_kind": "get_to_know", "starts_at": STARTS.isoformat(),
               "ends_at": (STARTS + timedelta(hours=1)).isoformat(),
               "sequence": str(sequence), "kind": kind}
    if kind.startswith("deadline"):
        payload = {"deadline": "kartlegging", "due_at": STARTS.isoformat(), "kind": kind}
    return OutboxRow(uuid.uuid4(), CASE, "ha", source, f"k:{kind}", kind, EMAIL, recipient,
                     STARTS, None, payload)


def test_an_invitation_arrives_once_with_a_parsable_calendar_and_no_health_details(
        channel: Channel) -> None:
    notifier, arrived, address = channel
    r = row("meeting_invitation")
    assert notifier.send([render(r, BASE)]) == {r.id: None}
    [got] = arrived()
    assert (got.id, got.to) == (r.id, address)
    assert f"{BASE}/saker/{CASE}" in got.body
    assert "30.03.2027 kl. 10:00" in got.subject and "30.03.2027 kl. 10:00" in got.body
    for word in SENSITIVE:
        assert word.lower() not in f"{got.subject} {got.body}".lower().replace(
            "arbeid og helse", ""), word
    assert got.invite is not None
    assert got.invite["method"] == "REQUEST"
    assert got.invite["uid"] == "7f0c7a30-1c1e-4d5e-9e7a-2d0f5b2a9c11@coordinator"
    assert got.invite["sequence"] == 0
    assert (got.invite["start"], got.invite["end"]) == (STARTS, STARTS + timedelta(hours=1))


def test_a_cancellation_carries_the_same_uid_a_higher_sequence_and_cancel(
        channel: Channel) -> None:
    notifier, arrived, _ = channel
    r = row("meeting_cancelled", sequence=2)
    notifier.send([render(r, BASE)])
    [got] = arrived()
    assert got.invite is not None
    assert (got.invite["method"], got.invite["sequence"]) == ("CANCEL", 2)
    assert got.subject.startswith("Avlyst")


def test_deadline_reminders_carry_only_a_link_and_no_invitation(channel: Channel) -> None:
    notifier, arrived, _ = channel
    r = row("deadline_overdue", source=RULE)
    notifier.send([render(r, BASE)])
    [got] = arrived()
    assert got.invite is None
    assert "kartlegging" not in f"{got.subject} {got.body}".lower()
    assert f"{BASE}/saker/{CASE}" in got.body


def test_a_batch_delivers_every_message_under_its_own_id(channel: Channel) -> None:
    notifier, arrived, _ = channel
    batch = [row("meeting_reminder", source=RULE, recipient=f"nav-{i}") for i in range(5)]
    result = notifier.send([render(r, BASE) for r in batch])
    assert result == {r.id: None for r in batch}
    assert sorted(str(m.id) for m in arrived()) == sorted(str(r.id) for r in batch)


def test_message_id_is_the_outbox_id() -> None:
    outbox_id = uuid.uuid4()
    assert message_id(outbox_id) == f"<{outbox_id}@coordinator>"


def test_smtp_reports_a_refused_recipient_and_delivers_the_rest(
        smtp_server: tuple[_Collect, int]) -> None:
    server, port = smtp_server
    smtp = SmtpNotifier("127.0.0.1", port, sender="ikke-svar@example.no")
    good, bad = row("meeting_reminder", recipient="nav-1"), row("meeting_reminder",
                                                                recipient="refused")
    result = smtp.send([render(bad, BASE), render(good, BASE)])
    assert result[good.id] is None and result[bad.id]
    assert [_from_mail(m).id for m in server.messages] == [good.id]


def test_smtp_with_no_server_raises_so_the_dispatcher_retries() -> None:
    smtp = SmtpNotifier("127.0.0.1", _free_port(), sender="ikke-svar@example.no", timeout=2)
    with pytest.raises(OSError):
        smtp.send([render(row("meeting_reminder"), BASE)])


# -- the Nav webhook channel: the fake and adapters.nav_webhook against a real HTTP server ---
WEBHOOK_SECRET = "w" * 40


class _WebhookServer:
    """A real ``http.server`` in a thread; answers ``status_for`` recipients' events with the
    given status (by event id), 200 otherwise, and keeps verified bodies."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes, bool]] = []    # (delivery id, body, verified)
        self.fail: set[str] = set()
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                delivery = self.headers[DELIVERY_HEADER]
                ok = verify(WEBHOOK_SECRET, self.headers[TIMESTAMP_HEADER], body,
                            self.headers[SIGNATURE_HEADER], now=time.time())
                refused = delivery in outer.fail
                if not refused:
                    outer.received.append((delivery, body, ok))
                self.send_response(500 if refused else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None
        return Handler


@pytest.fixture
def webhook_server() -> Iterator[_WebhookServer]:
    s = _WebhookServer()
    s.thread.start()
    try:
        yield s
    finally:
        s.server.shutdown()
        s.server.server_close()
        s.thread.join()


Hook = tuple[Any, Callable[[], list[tuple[uuid.UUID, dict[str, Any]]]],
             Callable[[uuid.UUID], None]]


@pytest.fixture(params=["fake", "http"])
def hook(request: pytest.FixtureRequest) -> Hook:
    """(notifier, what arrived as (id, event), make an id fail)."""
    if request.param == "fake":
        fake = _FailingIds()
        return (fake, lambda: [(m.id, json.loads(m.body)) for m in fake.messages.values()],
                fake.fail.add)
    server: _WebhookServer = request.getfixturevalue("webhook_server")
    notifier = WebhookNotifier(server.url, WEBHOOK_SECRET, timeout=5)

    def arrived() -> list[tuple[uuid.UUID, dict[str, Any]]]:
        assert all(ok for _, _, ok in server.received)        # every signature verifies
        return [(uuid.UUID(d), json.loads(b)) for d, b, _ in server.received]
    return notifier, arrived, lambda i: server.fail.add(str(i))


class _FailingIds(RecordingNotifier):
    """The fake with failure by id (the webhook has one recipient, ``nav``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: set[uuid.UUID] = set()

    def send(self, messages: Sequence[OutgoingMessage],
             on_result: Callable[[uuid.UUID, str | None], None] | None = None,
             ) -> Mapping[uuid.UUID, str | None]:
        out: dict[uuid.UUID, str | None] = {}
        for m in messages:
            if m.id in self.fail:
                out[m.id] = "HTTP 500"
                if on_result is not None:
                    on_result(m.id, out[m.id])
            else:
                out.update(super().send([m], on_result))
        return out


def nav_event(event: str = "plan_ready") -> OutboxRow:
    return nav.row(case_id=CASE, pilot="ha", version=3, event=event, now=STARTS)


def test_a_nav_event_arrives_once_as_ids_pilot_event_time_and_link(hook: Hook) -> None:
    notifier, arrived, _ = hook
    r = nav_event()
    assert notifier.send([render(r, BASE)]) == {r.id: None}
    [(got_id, body)] = arrived()
    assert got_id == r.id
    assert body == {"id": str(r.id), "event": "plan_ready", "case_id": str(CASE),
                    "pilot": "ha", "occurred_at": STARTS.isoformat(),
                    "link": f"{BASE}/saker/{CASE}"}


def test_a_failed_nav_event_is_an_error_and_the_rest_arrive(hook: Hook) -> None:
    notifier, arrived, fail = hook
    good, bad = nav_event(), nav_event("referral_consented")
    fail(bad.id)
    result = notifier.send([render(bad, BASE), render(good, BASE)])
    assert result[good.id] is None and result[bad.id] == "HTTP 500"
    assert [i for i, _ in arrived()] == [good.id]


def test_the_webhook_does_not_follow_redirects(webhook_server: _WebhookServer) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("Location", webhook_server.url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        notifier = WebhookNotifier(f"http://127.0.0.1:{server.server_address[1]}/",
                                   WEBHOOK_SECRET, timeout=5)
        r = nav_event()
        assert notifier.send([render(r, BASE)]) == {r.id: "HTTP 302"}
        assert webhook_server.received == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_webhook_with_no_server_reports_an_error_so_the_dispatcher_retries() -> None:
    notifier = WebhookNotifier(f"http://127.0.0.1:{_free_port()}/hook", WEBHOOK_SECRET,
                               timeout=2)
    batch = [nav_event() for _ in range(3)]
    result = notifier.send([render(r, BASE) for r in batch])
    assert set(result) == {r.id for r in batch}
    assert all(e and "URLError" in e for e in result.values())      # one refusal for all


def test_a_silent_webhook_costs_one_timeout_per_batch_not_one_per_message() -> None:
    accepted: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.1)
        done = threading.Event()

        def accept() -> None:
            while not done.is_set():
                try:
                    accepted.append(listener.accept()[0])       # never answers
                except TimeoutError:
                    continue
        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        notifier = WebhookNotifier(f"http://127.0.0.1:{listener.getsockname()[1]}/hook",
                                   WEBHOOK_SECRET, timeout=1)
        batch = [nav_event() for _ in range(3)]
        result = notifier.send([render(r, BASE) for r in batch])
        assert len({*result.values()}) == 1 and None not in result.values()
        done.set()
        thread.join()
        assert len(accepted) == 1                       # the rest were not tried
    for conn in accepted:
        conn.close()
def test_each_outcome_is_reported_once_after_acceptance_and_before_the_next_send(
        channel: Channel) -> None:
    """The dispatcher marks a message sent inside ``on_result``: by then the message must
    have arrived, and the next one must not have left yet (at most one in flight)."""
    notifier, arrived, _ = channel
    batch = [row("meeting_reminder", source=RULE, recipient=f"nav-{i}") for i in range(4)]
    batch.insert(2, row("meeting_reminder", source=RULE, recipient="refused"))
    heard: list[tuple[uuid.UUID, bool, list[uuid.UUID]]] = []

    def on_result(outbox_id: uuid.UUID, error: str | None) -> None:
        heard.append((outbox_id, error is None, [m.id for m in arrived()]))

    result = notifier.send([render(r, BASE) for r in batch], on_result)
    assert [i for i, _, _ in heard] == [r.id for r in batch]   # once each, in order
    good = [r.id for r in batch if r.recipient != "refused"]
    for k, (outbox_id, accepted, seen) in enumerate(heard):
        assert accepted == (result[outbox_id] is None) == (outbox_id in good)
        so_far = [r.id for r in batch[:k + 1] if r.id in good]
        assert seen == so_far                       # it has arrived, the next has not left
    assert [m.id for m in arrived()] == good


def test_an_exception_from_on_result_stops_the_batch(channel: Channel) -> None:
    notifier, arrived, _ = channel
    batch = [row("meeting_reminder", source=RULE, recipient=f"nav-{i}") for i in range(3)]

    def on_result(outbox_id: uuid.UUID, error: str | None) -> None:
        raise LookupError("store down")

    with pytest.raises(LookupError):
        notifier.send([render(r, BASE) for r in batch], on_result)
    assert [m.id for m in arrived()] == [batch[0].id]
