"""E-mail over SMTP (stdlib ``smtplib``), implementing ``coordinator.ports.Notifier``.

One connection per batch; each outcome is reported (``on_result``) as soon as the server
answered, so the dispatcher can mark that message sent before the next goes out. The
outbox id is the ``Message-ID``, so a resend after a crash carries the same id and
receivers can drop the copy. Meeting notices carry a
``text/calendar`` part (adapters.ics_calendar). Bodies hold only a link and a time.
Recipients are actor ids; an id that is not an address becomes ``<id>@<domain>``.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from uuid import UUID

from adapters.ics_calendar import invitation
from coordinator.scheduling.outbox import OutgoingMessage


class SmtpNotifier:
    def __init__(self, host: str, port: int = 25, *, sender: str,
                 recipient_domain: str = "localhost", starttls: bool = False,
                 username: str | None = None, password: str | None = None,
                 timeout: float = 30.0) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.recipient_domain = recipient_domain
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout = timeout

    def address(self, recipient: str) -> str:
        return recipient if "@" in recipient else f"{recipient}@{self.recipient_domain}"

    def message(self, m: OutgoingMessage, now: datetime) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = self.address(m.recipient)
        msg["Subject"] = m.subject
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = message_id(m.id)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(m.body)
        if m.invite is not None:
            ics = invitation(m.invite, organizer=self.sender, attendee=self.address(m.recipient),
                             stamp=now)
            msg.add_attachment(ics, maintype="text", subtype="calendar",
                               filename="invitation.ics",
                               params={"method": m.invite.method})
        return msg

    def send(self, messages: Sequence[OutgoingMessage],
             on_result: Callable[[UUID, str | None], None] | None = None,
             ) -> Mapping[UUID, str | None]:
        """Raises OSError / smtplib.SMTPException when no connection can be made; a
        refused message is an error text in the result. ``on_result`` hears each outcome
        as soon as the server answered, before the next message goes out (same
        connection); an exception it raises closes the connection and propagates."""
        if not messages:
            return {}
        now = datetime.now(UTC)
        out: dict[UUID, str | None] = {}
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            for m in messages:
                try:
                    smtp.send_message(self.message(m, now))
                    out[m.id] = None
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
                        smtplib.SMTPDataError) as exc:
                    out[m.id] = f"{type(exc).__name__}: {exc}"
                if on_result is not None:
                    on_result(m.id, out[m.id])
        return out


def message_id(outbox_id: UUID) -> str:
    return f"<{outbox_id}@coordinator>"
