"""Message texts in bokmål. Pure.

E-mail carries no health details: only a link into the application and, for meetings, the
time (the subject and body never name the pilot, the meeting kind or the deadline). The
in-app inbox sits behind log-in and may say what the reminder is about.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from coordinator.cases.meetings import MEETING_KINDS
from coordinator.scheduling.outbox import (
    EMAIL,
    NAV_WEBHOOK,
    CalendarInvite,
    OutboxRow,
    OutgoingMessage,
)
from coordinator.workflows.deadlines import OSLO

DEADLINE_NAMES = {
    "kartlegging": "kartlegging",
    "info_letter": "informasjonsbrev fra Nav",
    "follow_up_ends": "slutt på oppfølgingsperioden",
}
CADENCE_NAMES = {
    "gp_update": "månedlig oppdatering til fastlegen",
    "weekly_follow_up": "ukentlig oppfølgingsavtale",
}
MEETING_NOTICES = ("meeting_invitation", "meeting_updated", "meeting_cancelled")


def when(moment: datetime) -> str:
    """``24.03.2027 kl. 09:00`` in Oslo time."""
    return moment.astimezone(OSLO).strftime("%d.%m.%Y kl. %H:%M")


def case_link(base_url: str, case_id: object) -> str:
    return f"{base_url.rstrip('/')}/saker/{case_id}"


def render(row: OutboxRow, base_url: str) -> OutgoingMessage:
    """The message for one outbox row on its channel."""
    p = row.payload
    link = case_link(base_url, row.case_id) if row.case_id else base_url
    if row.channel == NAV_WEBHOOK:
        return OutgoingMessage(row.id, row.channel, row.recipient, str(p["event"]),
                               webhook_body(row, link), link, row.case_id)
    meeting = "starts_at" in p and "meeting_id" in p
    if meeting:
        subject, body = _meeting_text(row.kind, p, row.channel == EMAIL)
    else:
        subject, body = _deadline_text(row.kind, p, row.channel == EMAIL)
    invite = None
    if meeting and row.kind in MEETING_NOTICES:
        invite = CalendarInvite(
            uid=f"{p['meeting_id']}@coordinator", sequence=int(p.get("sequence", 0)),
            starts_at=datetime.fromisoformat(p["starts_at"]),
            ends_at=datetime.fromisoformat(p["ends_at"]),
            method="CANCEL" if row.kind == "meeting_cancelled" else "REQUEST",
            summary="Møte i Arbeid og helse", url=link)
    return OutgoingMessage(row.id, row.channel, row.recipient, subject,
                           f"{body}\n\nSe detaljer (krever innlogging): {link}\n", link,
                           row.case_id, invite)


def webhook_body(row: OutboxRow, link: str) -> str:
    """The JSON event Nav receives: ids, pilot, event, time and a link; nothing else (no
    health data). Compact, keys sorted, so the signed bytes are reproducible."""
    p = row.payload
    event = {"id": str(row.id), "event": str(p["event"]), "case_id": str(row.case_id),
             "pilot": row.pilot,
             "occurred_at": datetime.fromisoformat(p["occurred_at"]).isoformat(),
             "link": link}
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _meeting_text(kind: str, p: dict[str, Any] | Any, email: bool) -> tuple[str, str]:
    at = when(datetime.fromisoformat(p["starts_at"]))
    what = "et møte" if email else MEETING_KINDS.get(p.get("meeting_kind", ""), "et møte")
    if kind == "meeting_cancelled":
        return f"Avlyst: møte {at}", f"Møtet {at} er avlyst ({what})." if not email \
            else f"Møtet {at} er avlyst."
    if kind == "meeting_updated":
        return f"Flyttet: møte {at}", f"Møtet er flyttet til {at} ({what})." if not email \
            else f"Møtet er flyttet til {at}."
    if kind == "meeting_reminder":
        return f"Påminnelse: møte {at}", f"Påminnelse om {what} {at}."
    return f"Møteinnkalling {at}", f"Du er invitert til {what} {at}."


def _deadline_text(kind: str, p: dict[str, Any] | Any, email: bool) -> tuple[str, str]:
    at = when(datetime.fromisoformat(p["due_at"])) if "due_at" in p else ""
    if email:
        return ("Påminnelse: en sak trenger oppfølging",
                f"En sak du følger opp har en frist eller avtale ({at}).")
    if kind == "cadence_due":
        name = CADENCE_NAMES.get(p.get("cadence", ""), p.get("cadence", "avtale"))
        return f"Tid for {name}", f"Det er tid for {name} ({at})."
    name = DEADLINE_NAMES.get(p.get("deadline", ""), p.get("deadline", "frist"))
    if kind == "deadline_overdue":
        return f"Fristen er passert: {name}", f"Fristen for {name} gikk ut {at}."
    return f"Frist snart: {name}", f"Fristen for {name} går ut {at}."
