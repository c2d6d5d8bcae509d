"""Ports: what the core needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self, runtime_checkable
from uuid import UUID

from coordinator.audit.checkpoint import Checkpoint, CheckpointSigner
from coordinator.audit.events import AuditEvent, Row, SealedEvent
from coordinator.audit.merkle import Head
from coordinator.audit.verify import Anchors, Scan, Tick
from coordinator.cases.document_model import (
    Binding,
    DataKey,
    Document,
    Erasure,
    Rotation,
)
from coordinator.cases.meetings import Meeting
from coordinator.cases.model import Case, CaseEvent, Member
from coordinator.consent.model import ConsentRecord
from coordinator.intake.model import (
    FormResponse,
    IdempotencyRecord,
    MeasureRecord,
    TherapySession,
)
from coordinator.scheduling.outbox import InboxItem, OutboxRow, OutgoingMessage


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC time."""
        ...


class CaseRepository(Protocol):
    def add(self, case: Case) -> None: ...

    def get(self, case_id: UUID) -> Case:
        """Raises: CaseNotFound."""
        ...

    def list(self, *, pilot: str | None = None, state: str | None = None,
             workflow_version: int | None = None, after: UUID | None = None,
             limit: int = 50, member: tuple[str, str] | None = None,
             subject: str | None = None) -> Sequence[Case]:
        """Cases ordered by id, the page after ``after`` (keyset pagination); ``member``
        (actor id, role) keeps those whose team has that member, ``subject`` those about
        that person."""
        ...

    def count(self) -> int: ...


class EventRepository(Protocol):
    def history(self, case_id: UUID) -> Sequence[CaseEvent]: ...

    def redact(self, case_id: UUID) -> int:
        """Blank the free text of the case's stored events (``reason`` and ``data``) for
        an erasure, keeping each row's kind, states, time, actor and seq; how many."""
        ...


class ConsentRepository(Protocol):
    def add(self, record: ConsentRecord) -> None: ...

    def for_case(self, case_id: UUID) -> Sequence[ConsentRecord]: ...

    def for_pilot(self, pilot: str, *, since: datetime | None = None,
                  until: datetime | None = None, limit: int = 1000) -> Sequence[ConsentRecord]:
        """Committed records of the pilot's cases, oldest first."""
        ...


class AuditLog(Protocol):
    """Chained audit events. ``append`` writes on commit, in the same transaction."""

    def append(self, event: AuditEvent) -> None: ...

    def events(self, *, stream: str | None = None, since: datetime | None = None,
               streams: Iterable[str] | None = None) -> Iterator[SealedEvent]:
        """Ordered by (stream, seq), streamed."""
        ...

    def stream_after(self, stream: str, seq: int) -> Iterator[SealedEvent]: ...

    def rows(self, *, stream: str | None = None) -> Iterator[Row]:
        """What verification reads (``audit.events.ROW``), ordered by (stream, seq),
        streamed; the lean counterpart of ``events``."""
        ...

    def scan(self, anchors: Anchors, *, jobs: int = 1,
             progress: Tick | None = None) -> Scan:
        """``audit.verify.scan`` over every event, in any order that keeps each stream
        in seq order; ``jobs`` > 1 may split it over processes."""
        ...

    def query(self, *, case_id: UUID | None = None, kinds: Iterable[str] | None = None,
              since: datetime | None = None, until: datetime | None = None,
              person_key: str | None = None, limit: int | None = None) -> list[SealedEvent]:
        """Ordered by time."""
        ...

    def heads(self, stream: str | None = None) -> dict[str, Head]: ...

    def count(self) -> int: ...

    def after_id(self, event_id: int) -> list[SealedEvent]:
        """Events with a larger row id, in (stream, seq) order (a read hint)."""
        ...

    def max_id(self) -> int: ...

    def checkpoints(self) -> list[Checkpoint]: ...

    def checkpoint_heads(self, stream: str | None = None) -> dict[int, dict[str, Head]]: ...

    def add_checkpoint(self, checkpoint: Checkpoint, delta: Mapping[str, Head]) -> None:
        """Raises ConcurrentUpdate on commit when another process wrote that seq first."""
        ...


class MemberRepository(Protocol):
    def add(self, member: Member) -> None:
        """Written on commit; a second row for the same (case, actor) raises
        ConcurrentUpdate there."""
        ...

    def for_case(self, case_id: UUID) -> Sequence[Member]:
        """The team, in the order its members were added (pending ones included)."""
        ...


class IdempotencyRepository(Protocol):
    def get(self, source: str, key: str) -> IdempotencyRecord | None: ...

    def claim(self, record: IdempotencyRecord) -> bool:
        """Insert ``record`` (state processing) at once; False if the key is taken. The
        claim is visible to others once the unit of work commits."""
        ...

    def complete(self, source: str, key: str, case_id: UUID, response: dict[str, object],
                 at: datetime) -> None:
        """Mark the claim done with its answer, on commit."""
        ...

    def release(self, source: str, key: str) -> None:
        """Delete the claim (a failed request), on commit."""
        ...


class FormRepository(Protocol):
    def add(self, form: FormResponse) -> None: ...

    def for_case(self, case_id: UUID) -> Sequence[FormResponse]: ...

    def erase(self, case_id: UUID) -> int:
        """Delete the case's forms (an erasure); how many."""
        ...


class MeasureRepository(Protocol):
    def add(self, measure: MeasureRecord) -> None: ...

    def for_case(self, case_id: UUID) -> Sequence[MeasureRecord]: ...

    def erase(self, case_id: UUID) -> int:
        """Delete the case's measures (an erasure); how many."""
        ...


class SessionRepository(Protocol):
    def add(self, session: TherapySession) -> None: ...

    def for_case(self, case_id: UUID) -> Sequence[TherapySession]: ...
class MeetingRepository(Protocol):
    def add(self, meeting: Meeting) -> None:
        """Insert or replace (by id) on commit."""
        ...

    def get(self, meeting_id: UUID) -> Meeting:
        """Raises: MeetingNotFound."""
        ...

    def for_case(self, case_id: UUID) -> Sequence[Meeting]:
        """The case's meetings by start time (pending changes included)."""
        ...


class OutboxRepository(Protocol):
    """The case side of the outbox: every change is written on commit, in the same
    transaction as the case change that caused it."""

    def add(self, rows: Sequence[OutboxRow]) -> None:
        """One-off notices (meeting invitations, cancellations)."""
        ...

    def replace_planned(self, case_id: UUID, rows: Sequence[OutboxRow]) -> None:
        """Make ``rows`` the case's planned reminders: pending ``rule`` rows whose
        (key, recipient, channel) is not among them are cancelled; rows not yet present
        (in any status but cancelled) are inserted."""
        ...

    def cancel_meeting(self, meeting_id: UUID) -> None:
        """Cancel the meeting's pending rows (its reminders and unsent notices)."""
        ...

    def cancel_case(self, case_id: UUID) -> None:
        """Cancel every pending row of the case."""
        ...

    def cancel_channel(self, case_id: UUID, channel: str) -> None:
        """Cancel the case's pending rows on ``channel`` (Nav events after a withdrawal)."""
        ...

    def for_case(self, case_id: UUID) -> Sequence[OutboxRow]:
        """Committed rows of the case, by due time."""
        ...


class Notifier(Protocol):
    """One delivery channel (e-mail, the in-app inbox, …)."""

    def send(self, messages: Sequence[OutgoingMessage],
             on_result: Callable[[UUID, str | None], None] | None = None,
             ) -> Mapping[UUID, str | None]:
        """Deliver a batch; per message id ``None`` when accepted, else an error text.
        Sending a message id again must not create a second, different message.

        ``on_result(id, error)`` is called once per message as soon as its outcome is
        known and before the next message is sent (the dispatcher marks each message sent
        there, so a crash resends at most the one in flight). An exception it raises
        stops the batch and propagates."""
        ...


class OutboxStore(Protocol):
    """The dispatcher's side of the outbox. Each call is one short transaction."""

    def claim(self, worker: str, now: datetime, limit: int,
              lease: timedelta) -> Sequence[OutboxRow]:
        """Take up to ``limit`` rows that are due (pending with ``due_at <= now``, or
        claimed with an expired lease) for ``worker`` until ``now + lease``. Two workers
        never get the same row while its lease runs."""
        ...

    def mark_sent(self, worker: str, now: datetime, outbox_id: UUID) -> bool:
        """Mark one row sent (one delivery row) in a transaction of its own, only where
        ``worker`` still holds the claim. False when the claim had been lost."""
        ...

    def complete(self, worker: str, now: datetime, sent: Sequence[UUID],
                 failed: Sequence[tuple[UUID, str, datetime | None]]) -> tuple[int, int]:
        """Mark ``sent`` rows sent (one delivery row each) and ``failed`` ones (id, error,
        retry at; ``None`` = dead), only where ``worker`` still holds the claim. Returns
        (rows marked sent, rows whose claim had been lost)."""
        ...

    def dead(self, pilot: str | None = None, limit: int = 100,
             offset: int = 0) -> Sequence[OutboxRow]:
        """Dead rows by due time (then id), from ``offset``."""
        ...

    def requeue(self, outbox_id: UUID, now: datetime) -> OutboxRow:
        """Give a dead row new attempts, due now. Raises: ReminderNotFound."""
        ...


@dataclass(frozen=True)
class WrappedKey:
    """A data key wrapped under a key-encryption key (KEK). ``kek_id`` names the KEK (and
    its version) so that rotation can find every key still wrapped under an old one;
    ``blob`` is opaque to everyone but the provider that made it."""

    kek_id: str
    blob: bytes


class KeyProvider(Protocol):
    """Wraps and unwraps data keys under key-encryption keys it keeps to itself (a local
    key file, Vault transit, …). The KEK never leaves the provider; a data key leaves only
    as the return value of ``unwrap``. ``context`` (the case and audience a data key
    belongs to) is bound into the wrap: unwrapping with another context fails."""

    def current_kek(self) -> str:
        """The id of the KEK that new wraps use."""
        ...

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        """Wrap under the current KEK."""
        ...

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        """Raises: KeyUnavailable when the KEK is unknown or retired, or the blob or
        context does not match."""
        ...

    def rotate(self) -> str:
        """Make a new KEK current and return its id; older KEKs still unwrap until
        retired."""
        ...

    def retire(self, kek_id: str) -> None:
        """Forget an old KEK (after every key wrapped under it was re-wrapped); unwrapping
        under it then fails. Retiring the current KEK raises InvalidInput."""
        ...


class DocumentCipher(Protocol):
    """Authenticated encryption of documents (AES-256-GCM in ``crypto.envelope``). The
    core never sees an algorithm, only keys as opaque bytes it got from ``KeyProvider``."""

    def new_key(self) -> bytes:
        """A fresh random data key."""
        ...

    def seal(self, key: bytes, plaintext: bytes, binding: Binding) -> bytes:
        """nonce || ciphertext+tag, bound to ``binding``."""
        ...

    def open(self, key: bytes, sealed: bytes, binding: Binding) -> bytes:
        """Raises: DecryptionFailed (altered, another key, or another binding)."""
        ...


class DocumentRepository(Protocol):
    """Encrypted documents, their shares and the erased-case markers. Writes are part of
    the unit of work; ``replace`` is version-checked (``ConcurrentUpdate`` when the row
    changed since it was read, at once or on commit)."""

    def add(self, document: Document) -> None: ...

    def get(self, document_id: UUID) -> Document:
        """Raises: DocumentNotFound."""
        ...

    def for_case(self, case_id: UUID, *, after: UUID | None = None,
                 limit: int = 50) -> Sequence[Document]:
        """Ordered by id, the page after ``after``."""
        ...

    def replace(self, document: Document, expected_row_version: int) -> None:
        """Store ``document`` (shares included) over the row at ``expected_row_version``."""
        ...

    def reseal(self, documents: Sequence[Document]) -> int:
        """Store each document's new key version, ciphertext, digest and row version
        where the row is still at ``row_version - 1`` (others were changed meanwhile and
        are left alone); how many were stored."""
        ...

    def stale(self, *, limit: int, after: UUID | None = None) -> Sequence[Document]:
        """Documents sealed under an older data key version than their (case, audience)'s
        newest, by id, after ``after`` (keyset paging: a batch never rescans the done)."""
        ...

    def count_stale(self) -> int: ...

    def erase(self, case_id: UUID) -> int:
        """Delete the case's documents and shares; how many documents."""
        ...

    def erasure(self, case_id: UUID) -> Erasure | None: ...

    def mark_erased(self, erasure: Erasure) -> None: ...


class DataKeyRepository(Protocol):
    """Wrapped data keys, one row per (case, audience, key version), and the runs of key
    rotation."""

    def newest(self, case_id: UUID, audience: str) -> DataKey | None: ...

    def get(self, case_id: UUID, audience: str, key_version: int) -> DataKey:
        """Raises: KeyUnavailable (destroyed or never made)."""
        ...

    def for_cases(self, case_ids: Iterable[UUID]) -> Sequence[DataKey]:
        """Every stored key of these cases (one query for a batch)."""
        ...

    def add(self, key: DataKey) -> bool:
        """Insert; False (and nothing written) when that version exists already (another
        writer made it first)."""
        ...

    def rewrap(self, rewrapped: Sequence[tuple[DataKey, str, bytes]]) -> int:
        """For each (key as read, new KEK id, new blob): replace the wrap where it is
        still the one read (``key.kek_id``); how many were replaced."""
        ...

    def not_under(self, kek_id: str, *, limit: int,
                  after: tuple[UUID, str, int] | None = None) -> Sequence[DataKey]:
        """Keys wrapped under another KEK than ``kek_id``, by (case, audience, version),
        after ``after``."""
        ...

    def count_not_under(self, kek_id: str) -> int: ...

    def kek_ids(self) -> set[str]:
        """Every KEK some stored key is wrapped under."""
        ...

    def created_before(self, moment: datetime, *, limit: int,
                       after: tuple[UUID, str] | None = None) -> Sequence[DataKey]:
        """The newest key of each (case, audience) whose newest was made before
        ``moment``, by (case, audience), after ``after``."""
        ...

    def count_created_before(self, moment: datetime) -> int: ...

    def superseded(self, *, limit: int) -> Sequence[DataKey]:
        """Keys with a newer version in their (case, audience) that no document is sealed
        under any more (safe to destroy)."""
        ...

    def destroy(self, case_id: UUID, audience: str | None = None,
                below: int | None = None) -> int:
        """Delete the case's keys (of ``audience``, versions below ``below``); keys a
        document is still sealed under are kept. How many were deleted."""
        ...

    def open_rotation(self, kind: str) -> Rotation | None: ...

    def start_rotation(self, rotation: Rotation) -> None: ...

    def finish_rotation(self, rotation_id: UUID, at: datetime) -> None: ...


@runtime_checkable
class InboxReader(Protocol):
    """The read side of the in-app inbox: one recipient's messages, newest first."""

    def messages_for(self, recipient: str, limit: int = 50,
                     offset: int = 0) -> list[InboxItem]:
        ...


class UnitOfWork(Protocol):
    @property
    def cases(self) -> CaseRepository: ...

    @property
    def events(self) -> EventRepository: ...

    @property
    def consents(self) -> ConsentRepository: ...

    @property
    def members(self) -> MemberRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def forms(self) -> FormRepository: ...

    @property
    def measures(self) -> MeasureRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def meetings(self) -> MeetingRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def documents(self) -> DocumentRepository: ...

    @property
    def data_keys(self) -> DataKeyRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def commit(self) -> None:
        """Persist changes and the events of every touched case, atomically.

        Raises: ConcurrentUpdate when another writer changed a touched case first."""
        ...


__all__ = ["AuditLog", "CaseRepository", "CheckpointSigner", "Clock", "ConsentRepository",
           "DataKeyRepository", "DocumentCipher", "DocumentRepository", "EventRepository",
           "KeyProvider", "MemberRepository", "UnitOfWork", "WrappedKey"]
