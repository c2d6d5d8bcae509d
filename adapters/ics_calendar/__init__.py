"""iCalendar (RFC 5545) invitations for meetings, with the ``icalendar`` package.

One VEVENT per meeting; its UID stays the same across changes and SEQUENCE grows, so
calendar clients update or cancel the event they already hold (RFC 5546 REQUEST/CANCEL).
The summary is generic: no health details leave the system by e-mail.
"""

from __future__ import annotations

from datetime import UTC, datetime

from icalendar import Calendar, Event, vCalAddress, vText

from coordinator.scheduling.outbox import CalendarInvite

PRODID = "-//arbeid og helse//coordinator//NO"


def invitation(invite: CalendarInvite, *, organizer: str, attendee: str,
               stamp: datetime) -> bytes:
    """The .ics body (``METHOD:REQUEST`` or ``CANCEL``) for one attendee."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", invite.method)
    event = Event()
    event.add("uid", invite.uid)
    event.add("sequence", invite.sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", invite.starts_at.astimezone(UTC))
    event.add("dtend", invite.ends_at.astimezone(UTC))
    event.add("summary", invite.summary)
    event.add("url", invite.url)
    event.add("status", "CANCELLED" if invite.method == "CANCEL" else "CONFIRMED")
    org = vCalAddress(f"mailto:{organizer}")
    org.params["cn"] = vText("Arbeid og helse")
    event["organizer"] = org
    who = vCalAddress(f"mailto:{attendee}")
    who.params["role"] = vText("REQ-PARTICIPANT")
    who.params["rsvp"] = vText("FALSE")
    event.add("attendee", who)
    cal.add_component(event)
    body: bytes = cal.to_ical()
    return body
