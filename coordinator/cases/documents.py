"""Encrypted case documents: write, read, list, share, revoke and erase (pure use cases
over the unit of work and two ports, ``KeyProvider`` and ``DocumentCipher``).

Every read of a document's text passes the one enforcement point, ``cases.gate.check``,
and is audited (``data_read``, naming the document) before the text leaves. A reader on
the document's own side reads under ``same_side``; the person reads their own case's
documents; a reader of the other side needs both a share with their party and, at the
moment of reading, a live consent for (the share's purpose, the category, their party).
So a withdrawn consent or a revoked share stops the very next read. Sharing is itself a
disclosure through the gate (``data_shared``, with the consent it rests on).

Each document is sealed under the data key of its case and audience (``health``,
``nav``, or ``shared`` once shared); a share moves it to the ``shared`` key and the last
revoked share moves it back. Data keys are made on first use, wrapped by the
``KeyProvider``; their plaintext lives only in memory for one call. Erasing a case
deletes its documents and destroys its data keys (crypto-shredding), deletes its forms
and measures and blanks its events' free text: reads answer ``CaseErased`` for good,
while the audit trail, which holds ids, categories and digests of ciphertexts but never
content, still verifies. See docs/encryption.md.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from coordinator.access.policy import SYSTEM_ROLE, Permission, Relation
from coordinator.audit import events as kinds
from coordinator.audit.events import AuditEvent
from coordinator.cases import auditing, gate, team
from coordinator.cases.document_model import (
    DEFAULT_PURPOSE,
    HEALTH,
    KINDS,
    MAX_TEXT,
    NAV,
    SHARED,
    Binding,
    DataKey,
    Document,
    Erasure,
    Share,
)
from coordinator.cases.model import Actor, Case
from coordinator.cases.sharing import check_scope, log_read
from coordinator.consent.model import CATEGORIES, ROLE_PARTY
from coordinator.errors import (
    CaseErased,
    ConcurrentUpdate,
    CoordinatorError,
    DocumentNotFound,
    InvalidInput,
    NotShared,
    PermissionDenied,
    StaleVersion,
)
from coordinator.ports import Clock, DocumentCipher, KeyProvider, UnitOfWork, WrappedKey

DOCUMENT_WRITTEN = "document_written"
SHARE_REVOKED = "share_revoked"
CASE_ERASED = "case_erased"
# The parties of each side a document may be shared with.
PARTIES_OF = {HEALTH: frozenset({"rph", "therapist", "fastlege"}), NAV: frozenset({"nav"})}
WRITE_RETRIES = 5       # a write that meets a re-encryption (not a content change) retries

Denials = Callable[..., AbstractContextManager[None]]


@dataclass(frozen=True)
class DocumentText:
    """A document's metadata and its plaintext, as one granted read returns it."""

    document: Document
    text: str
    basis: str


@dataclass(frozen=True)
class ErasureReport:
    case_id: UUID
    documents: int
    keys: int
    erased_at: datetime
    already: bool = False
    forms: int = 0              # kartlegging forms deleted
    measures: int = 0           # outcome measures deleted
    events: int = 0             # case events whose reason and data were blanked


def other_side(side: str) -> str:
    return NAV if side == HEALTH else HEALTH


class Envelope:
    """Data keys and sealing: keys made on first use, unwrapped on demand. Unwrapped
    keys are kept in memory for the life of this object only (one use case call, or one
    rotation run), at most ``CACHE`` of them."""

    CACHE = 4096

    def __init__(self, keys: KeyProvider, cipher: DocumentCipher) -> None:
        self.keys = keys
        self.cipher = cipher
        self._plain: dict[tuple[UUID, str, int], bytes] = {}

    def unwrap(self, key: DataKey) -> bytes:
        ident = (key.case_id, key.audience, key.key_version)
        plain = self._plain.get(ident)
        if plain is None:
            plain = self.keys.unwrap(WrappedKey(key.kek_id, key.blob), key.context)
            if len(self._plain) >= self.CACHE:
                self._plain.clear()
            self._plain[ident] = plain
        return plain

    def new_key(self, uow: UnitOfWork, case_id: UUID, audience: str, version: int,
                now: datetime) -> DataKey | None:
        """A new data key version, wrapped under the current KEK; None when another
        writer made that version first."""
        plain = self.cipher.new_key()
        probe = DataKey(case_id, audience, version, "", b"", now)
        wrapped = self.keys.wrap(plain, probe.context)
        made = replace(probe, kek_id=wrapped.kek_id, blob=wrapped.blob)
        return made if uow.data_keys.add(made) else None

    def current(self, uow: UnitOfWork, case_id: UUID, audience: str,
                now: datetime) -> tuple[DataKey, bytes]:
        """The newest data key of (case, audience) and its plaintext; made when none."""
        for _ in range(3):
            key = uow.data_keys.newest(case_id, audience)
            if key is None:
                key = self.new_key(uow, case_id, audience, 1, now)
            if key is not None:
                return key, self.unwrap(key)
        raise CoordinatorError("could not make a data key; try again")

    def open(self, uow: UnitOfWork, doc: Document) -> bytes:
        """Raises: KeyUnavailable, DecryptionFailed."""
        plain = self._plain.get((doc.case_id, doc.audience, doc.key_version))
        if plain is None:
            plain = self.unwrap(uow.data_keys.get(doc.case_id, doc.audience, doc.key_version))
        return self.cipher.open(plain, doc.sealed, doc.binding)

    def seal(self, uow: UnitOfWork, doc: Document, plaintext: bytes, *, audience: str,
             revision: int, now: datetime,
             key: tuple[DataKey, bytes] | None = None) -> Document:
        """``doc`` sealed under (case, ``audience``)'s newest key (or ``key``) at
        ``revision``."""
        data_key, plain = key or self.current(uow, doc.case_id, audience, now)
        sealed = self.cipher.seal(plain, plaintext,
                                  Binding(doc.case_id, doc.id, audience, revision))
        return replace(doc, audience=audience, revision=revision,
                       key_version=data_key.key_version, sealed=sealed,
                       digest=hashlib.sha256(sealed).hexdigest())


class Documents:
    """The document use cases; ``Coordinator.documents`` builds one. Every refusal of
    access is audited by ``denials`` (the Coordinator's), in a unit of work of its own."""

    def __init__(self, uow: Callable[[], UnitOfWork], clock: Clock, keys: KeyProvider | None,
                 cipher: DocumentCipher | None, denials: Denials) -> None:
        self.uow = uow
        self.clock = clock
        self._keys = keys
        self._cipher = cipher
        self.denials = denials

    @property
    def envelope(self) -> Envelope:
        if self._keys is None or self._cipher is None:
            raise CoordinatorError("no key provider is configured for documents")
        return Envelope(self._keys, self._cipher)

    # -- writing --------------------------------------------------------------------------
    def write(self, case_id: UUID, *, actor: Actor, kind: str, category: str,
              text: str) -> Document:
        """A new document of the actor's side, sealed under that side's data key.

        Raises: CaseNotFound, NotCaseMember, PermissionDenied, CaseErased, InvalidInput."""
        now = self.clock.now()
        with self.denials(actor, "write_document", case_id, category=category), \
                self.uow() as uow:
            case, _rel = self._case(uow, actor, case_id, Permission.VIEW_CASE)
            doc = self.add(uow, case, actor, kind=kind, category=category, text=text, now=now)
            uow.commit()
            return doc

    def add(self, uow: UnitOfWork, case: Case, actor: Actor, *, kind: str, category: str,
            text: str, now: datetime, document_id: UUID | None = None) -> Document:
        """Seal and add a document (and its audit event) to ``uow`` without committing,
        for use cases that write more in the same transaction (a therapy session and its
        summary). The caller has authorised ``actor`` on ``case``.

        Raises: PermissionDenied, CaseErased, InvalidInput."""
        if uow.documents.erasure(case.id) is not None:
            raise CaseErased(case.id)
        side = self._writer_side(actor)
        _check_document(kind, category, side, text)
        doc = Document(document_id or uuid.uuid4(), case.id, kind, category, side, side, 1,
                       0, b"", "", now, actor.id, actor.role, now)
        doc = self.envelope.seal(uow, doc, text.encode(), audience=side, revision=1, now=now)
        uow.documents.add(doc)
        uow.audit.append(_written(doc, actor, case, now))
        return doc

    def update(self, case_id: UUID, document_id: UUID, *, actor: Actor, text: str,
               expected_revision: int | None = None) -> Document:
        """New text for a document of the actor's side (a new revision). A change of key
        or audience made meanwhile is not a conflict: the write retries on the new row.

        Raises: as ``write``, DocumentNotFound, StaleVersion (another revision)."""
        with self.denials(actor, "update_document", case_id):
            for _ in range(WRITE_RETRIES - 1):
                try:
                    return self._update(case_id, document_id, actor, text, expected_revision)
                except StaleVersion:
                    raise
                except ConcurrentUpdate:
                    continue            # re-read: a re-encryption or a share moved the row
            return self._update(case_id, document_id, actor, text, expected_revision)

    def _update(self, case_id: UUID, document_id: UUID, actor: Actor, text: str,
                expected_revision: int | None) -> Document:
        now = self.clock.now()
        with self.uow() as uow:
            case, _rel = self._case(uow, actor, case_id, Permission.VIEW_CASE)
            doc = self._document(uow, case, document_id)
            side = self._writer_side(actor)
            if side != doc.owner:
                raise PermissionDenied(f"only the {doc.owner} side edits this document",
                                       permission="write_document", role=actor.role)
            _check_document(doc.kind, doc.category, side, text)
            if expected_revision is not None and expected_revision != doc.revision:
                raise StaleVersion(expected_revision, doc.revision)
            new = self.envelope.seal(uow, doc, text.encode(), audience=doc.audience,
                                     revision=doc.revision + 1, now=now)
            new = replace(new, updated_at=now, row_version=doc.row_version + 1)
            uow.documents.replace(new, doc.row_version)
            uow.audit.append(_written(new, actor, case, now))
            uow.commit()
            return new

    # -- reading --------------------------------------------------------------------------
    def read(self, case_id: UUID, document_id: UUID, *, actor: Actor) -> DocumentText:
        """The document's text, if the gate lets ``actor`` read it now (audited first).

        Raises: CaseNotFound, NotCaseMember, CaseErased, DocumentNotFound, NotShared,
        PermissionDenied, ConsentRequired, KeyUnavailable, DecryptionFailed."""
        now = self.clock.now()
        with self.denials(actor, "read_document", case_id), self.uow() as uow:
            case, rel = self._case(uow, actor, case_id, Permission.VIEW_METADATA)
            doc = self._document(uow, case, document_id)
            purpose = "coordination"
            reader = gate.side_of_role(actor.role)
            if reader is not None and reader != doc.owner:
                party = ROLE_PARTY.get(actor.role, "")
                share = doc.share_for(party)
                if share is None:
                    raise NotShared(f"this {doc.category} document is not shared with "
                                    f"{party}", permission="read", role=actor.role)
                purpose = share.purpose
            verdict = gate.enforce(actor, rel, action=gate.READ, purpose=purpose,
                                   category=doc.category, audience=None,
                                   consents=uow.consents.for_case(case.id), now=now)
            text = self.envelope.open(uow, doc).decode()
            uow.audit.append(auditing.access(
                kinds.DATA_READ, actor, now, case_id=case.id, person_key=case.subject_id,
                purpose=purpose, category=doc.category, consent_id=verdict.consent_id,
                data={"basis": verdict.basis, "document": str(doc.id),
                      "revision": doc.revision}))
            uow.commit()
            return DocumentText(doc, text, verdict.basis)

    def list(self, case_id: UUID, *, actor: Actor, after: UUID | None = None,
             limit: int = 50) -> list[Document]:
        """Metadata (never text) of the documents ``actor`` could read: the person's own
        case's all, a team member's side's own and those shared with their party.

        Raises: CaseNotFound, NotCaseMember, PermissionDenied, CaseErased, InvalidInput."""
        if not 1 <= limit <= 500:
            raise InvalidInput("limit must be between 1 and 500", field="limit")
        with self.denials(actor, "list_documents", case_id), self.uow() as uow:
            case, rel = self._case(uow, actor, case_id, Permission.VIEW_CASE)
            found: list[Document] = []
            cursor = after
            while len(found) < limit:
                page = uow.documents.for_case(case.id, after=cursor, limit=limit)
                found += [d for d in page if _listed(actor, rel, d)]
                if len(page) < limit:
                    break
                cursor = page[-1].id
            log_read(uow, actor, case, "documents", self.clock.now())
            return found[:limit]

    # -- sharing --------------------------------------------------------------------------
    def share(self, case_id: UUID, document_id: UUID, *, actor: Actor, party: str,
              purpose: str | None = None) -> Share:
        """Disclose the document to ``party`` (of the other side): a disclosure through
        the gate, which needs a live consent for (purpose, category, party). The document
        moves to the case's shared data key.

        Raises: as ``read``, InvalidInput (a party of the owner's side)."""
        now = self.clock.now()
        with self.denials(actor, "share_document", case_id, audience=party), \
                self.uow() as uow:
            case, rel = self._case(uow, actor, case_id, Permission.VIEW_METADATA)
            doc = self._document(uow, case, document_id)
            self._owner_only(actor, doc, "shares")
            if party not in PARTIES_OF[other_side(doc.owner)]:
                raise InvalidInput(f"a {doc.owner} document is shared with "
                                   f"{', '.join(sorted(PARTIES_OF[other_side(doc.owner)]))}",
                                   field="party")
            purpose = purpose or DEFAULT_PURPOSE.get(doc.category, "coordination")
            check_scope(purpose, doc.category, party)
            verdict = gate.enforce(actor, rel, action=gate.SHARE, purpose=purpose,
                                   category=doc.category, audience=party,
                                   consents=uow.consents.for_case(case.id), now=now)
            new_share = Share(doc.id, party, purpose, verdict.consent_id, now, actor.id)
            new = doc
            if doc.audience != SHARED:
                env = self.envelope
                new = env.seal(uow, doc, env.open(uow, doc), audience=SHARED,
                               revision=doc.revision, now=now)
            new = replace(new, row_version=doc.row_version + 1, updated_at=now, shares=(
                *(s for s in doc.shares if s.party != party), new_share))
            uow.documents.replace(new, doc.row_version)
            uow.audit.append(auditing.access(
                kinds.DATA_SHARED, actor, now, case_id=case.id, person_key=case.subject_id,
                purpose=purpose, category=doc.category, audience=party,
                consent_id=verdict.consent_id,
                data={"basis": verdict.basis, "document": str(doc.id),
                      "revision": doc.revision, "digest": new.digest}))
            uow.commit()
            return new_share

    def revoke(self, case_id: UUID, document_id: UUID, party: str, *, actor: Actor) -> bool:
        """Take a share back: the party's next read is refused. The last share revoked
        moves the document back to its side's data key. False when there was none.

        Raises: CaseNotFound, NotCaseMember, PermissionDenied, CaseErased,
        DocumentNotFound."""
        now = self.clock.now()
        with self.denials(actor, "revoke_share", case_id, audience=party), \
                self.uow() as uow:
            case, _rel = self._case(uow, actor, case_id, Permission.SHARE_DATA)
            doc = self._document(uow, case, document_id)
            self._owner_only(actor, doc, "revokes shares of")
            if doc.share_for(party) is None:
                return False
            rest = tuple(s for s in doc.shares if s.party != party)
            new = doc
            if not rest:
                env = self.envelope
                new = env.seal(uow, doc, env.open(uow, doc), audience=doc.owner,
                               revision=doc.revision, now=now)
            new = replace(new, shares=rest, row_version=doc.row_version + 1, updated_at=now)
            uow.documents.replace(new, doc.row_version)
            uow.audit.append(auditing.access(
                SHARE_REVOKED, actor, now, case_id=case.id, person_key=case.subject_id,
                category=doc.category, audience=party,
                data={"document": str(doc.id), "audience": new.audience}))
            uow.commit()
            return True

    # -- erasure --------------------------------------------------------------------------
    def erase(self, case_id: UUID, *, actor: Actor, reason: str) -> ErasureReport:
        """Crypto-shredding: delete the case's documents and destroy its data keys, and in
        the same transaction delete its kartlegging forms and outcome measures and blank
        the free text (``reason``, ``data``) of its events, whose rows stay (kind, states,
        time, actor, seq: the history keeps its length). The erasure is an audit event
        with the reason and the counts. Operators only (the system actor). Erasing an
        erased case again changes nothing.

        Raises: PermissionDenied, InvalidInput, CaseNotFound."""
        if actor.role != SYSTEM_ROLE:
            raise PermissionDenied("only an operator erases a case", permission="erase",
                                   role=actor.role)
        reason = reason.strip()
        if not reason or len(reason) > 500:
            raise InvalidInput("an erasure needs a reason (at most 500 characters)",
                               field="reason")
        now = self.clock.now()
        with self.uow() as uow:
            case = uow.cases.get(case_id)
            earlier = uow.documents.erasure(case.id)
            if earlier is not None:
                return ErasureReport(case.id, 0, 0, earlier.erased_at, already=True)
            documents = uow.documents.erase(case.id)
            keys = uow.data_keys.destroy(case.id)
            forms, measures = uow.forms.erase(case.id), uow.measures.erase(case.id)
            events = uow.events.redact(case.id)
            uow.documents.mark_erased(Erasure(case.id, now, actor.id))
            uow.audit.append(auditing.access(
                CASE_ERASED, actor, now, case_id=case.id, person_key=case.subject_id,
                data={"reason": reason, "documents": documents, "keys": keys,
                      "forms": forms, "measures": measures, "events": events}))
            uow.commit()
            return ErasureReport(case.id, documents, keys, now, forms=forms,
                                 measures=measures, events=events)

    # -- helpers --------------------------------------------------------------------------
    def _case(self, uow: UnitOfWork, actor: Actor, case_id: UUID,
              permission: Permission) -> tuple[Case, Relation]:
        """Authorise first (a foreign case is a missing one), then refuse an erased one."""
        case = uow.cases.get(case_id)
        rel = team.authorize(uow, actor, case, permission)
        if uow.documents.erasure(case.id) is not None:
            raise CaseErased(case.id)
        return case, rel

    @staticmethod
    def _document(uow: UnitOfWork, case: Case, document_id: UUID) -> Document:
        doc = uow.documents.get(document_id)
        if doc.case_id != case.id:
            raise DocumentNotFound(document_id)
        return doc

    @staticmethod
    def _writer_side(actor: Actor) -> str:
        side = gate.side_of_role(actor.role)
        if side is None:
            raise PermissionDenied(f"{actor.role} writes no case documents",
                                   permission="write_document", role=actor.role)
        return side

    @staticmethod
    def _owner_only(actor: Actor, doc: Document, what: str) -> None:
        if gate.side_of_role(actor.role) != doc.owner:
            raise PermissionDenied(f"only the {doc.owner} side {what} this document",
                                   permission="share_data", role=actor.role)


def _check_document(kind: str, category: str, side: str, text: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"unknown document kind {kind!r}; kinds: "
                           f"{', '.join(sorted(KINDS))}", field="kind")
    if category not in CATEGORIES or gate.side_of_category(category) != side:
        raise InvalidInput(f"{category!r} is not a data category of the {side} side",
                           field="category")
    if not text.strip() or len(text) > MAX_TEXT:
        raise InvalidInput(f"a document needs a text of at most {MAX_TEXT} characters",
                           field="text")


def _listed(actor: Actor, rel: Relation, doc: Document) -> bool:
    if rel == Relation.OWN or actor.role == SYSTEM_ROLE:
        return True
    side = gate.side_of_role(actor.role)
    return side == doc.owner or doc.share_for(ROLE_PARTY.get(actor.role, "")) is not None


def _written(doc: Document, actor: Actor, case: Case, now: datetime) -> AuditEvent:
    return auditing.access(
        DOCUMENT_WRITTEN, actor, now, case_id=case.id, person_key=case.subject_id,
        category=doc.category,
        data={"document": str(doc.id), "kind": doc.kind, "revision": doc.revision,
              "audience": doc.audience, "key_version": doc.key_version,
              "digest": doc.digest})
