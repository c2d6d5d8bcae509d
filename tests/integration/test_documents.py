"""Encrypted documents on the fake, SQLite and PostgreSQL: the gate decides every read of a
document's text, a share needs a consent and moves the document to the shared key,
withdrawal and revocation hold from the next read, a ciphertext moved elsewhere does not
decrypt, rotation keeps every document readable, and erasure shreds the case's keys while
the audit trail still verifies."""

from __future__ import annotations

import dataclasses
import random
import uuid

import pytest

from coordinator.audit.events import ACCESS_DENIED, DATA_READ, DATA_SHARED
from coordinator.cases.commands import GrantConsent, OpenCase, WithdrawConsent
from coordinator.cases.documents import CASE_ERASED, DOCUMENT_WRITTEN, SHARE_REVOKED
from coordinator.cases.model import SYSTEM, Actor
from coordinator.demo import referral
from coordinator.errors import (
    CaseErased,
    Conflict,
    ConsentRequired,
    DecryptionFailed,
    DocumentNotFound,
    InvalidInput,
    NotCaseMember,
    NotShared,
    PermissionDenied,
    StaleVersion,
)
from coordinator.service import Coordinator
from coordinator.testing import FakeClock

GP = Actor("gp-1", "fastlege")
THERAPIST = Actor("kt-1", "kognitiv_terapeut")
NAV = Actor("nav-1", "nav_veileder")
BRO = Actor("bro-1", "brobygger")
OUTSIDER = Actor("nav-9", "nav_veileder")
AUDITOR = Actor("rev-1", "auditor")
PERSON = Actor("person-1", "bruker")
PLAINTEXT = "Kartlegging: panikkangst, sover dårlig, ønsker gradert sykmelding."


def open_case(c: Coordinator, clock: FakeClock, seed: int = 3) -> uuid.UUID:
    _ch, profile = referral("ringsaker", clock.now().date(), random.Random(seed))
    return c.open_case(OpenCase("ringsaker", "fastlege", profile, GP, subject_id=PERSON.id,
                                team=(THERAPIST, NAV, BRO))).id


def consent(case_id: uuid.UUID, purpose: str = "share_kartlegging",
            category: str = "kartlegging", party: str = "nav") -> GrantConsent:
    return GrantConsent(case_id, GP, frozenset({purpose}), frozenset({category}),
                        frozenset({party}), "digital", "v1")


def withdrawal(case_id: uuid.UUID, purpose: str = "share_kartlegging",
               category: str = "kartlegging", party: str = "nav") -> WithdrawConsent:
    return WithdrawConsent(case_id, PERSON, frozenset({purpose}), frozenset({category}),
                           frozenset({party}), "digital")


def kinds(c: Coordinator, case_id: uuid.UUID) -> list[str]:
    with c.uow() as uow:
        return [e.kind for e in uow.audit.query(case_id=case_id)]


def test_the_owner_side_and_the_person_read_without_consent(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    doc = c.documents.write(case_id, actor=THERAPIST, kind="kartleggingsskjema",
                            category="kartlegging", text=PLAINTEXT)
    assert (doc.owner, doc.audience, doc.revision, doc.key_version) == ("health", "health", 1, 1)
    assert PLAINTEXT.encode() not in doc.sealed
    assert c.documents.read(case_id, doc.id, actor=GP).text == PLAINTEXT
    got = c.documents.read(case_id, doc.id, actor=PERSON)
    assert (got.text, got.basis) == (PLAINTEXT, "own")
    assert kinds(c, case_id).count(DATA_READ) == 2
    assert DOCUMENT_WRITTEN in kinds(c, case_id)
    with c.uow() as uow:    # the audit trail holds ids and digests, never the text
        assert all(PLAINTEXT not in e.body for e in uow.audit.query(case_id=case_id))


@pytest.mark.parametrize("actor", [NAV, BRO], ids=["nav_veileder", "brobygger"])
def test_a_nav_role_reads_a_health_document_only_shared_and_under_consent(
        any_coordinator: Coordinator, clock: FakeClock, actor: Actor) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    doc = c.documents.write(case_id, actor=THERAPIST, kind="kartleggingsskjema",
                            category="kartlegging", text=PLAINTEXT)
    with pytest.raises(NotShared):
        c.documents.read(case_id, doc.id, actor=actor)
    assert [d.id for d in c.documents.list(case_id, actor=actor)] == []
    with pytest.raises(ConsentRequired):            # sharing needs a consent too
        c.documents.share(case_id, doc.id, actor=THERAPIST, party="nav")
    record = c.grant_consent(consent(case_id))
    share = c.documents.share(case_id, doc.id, actor=THERAPIST, party="nav")
    assert (share.purpose, share.consent_id) == ("share_kartlegging", record.id)
    got = c.documents.read(case_id, doc.id, actor=actor)
    assert (got.text, got.basis, got.document.audience) == (PLAINTEXT, "consent", "shared")
    assert [d.id for d in c.documents.list(case_id, actor=actor)] == [doc.id]
    # withdrawal holds from the very next read
    c.withdraw_consent(withdrawal(case_id))
    with pytest.raises(ConsentRequired):
        c.documents.read(case_id, doc.id, actor=actor)
    assert kinds(c, case_id).count(ACCESS_DENIED) >= 3
    assert DATA_SHARED in kinds(c, case_id)


def test_revoking_a_share_stops_reads_and_moves_the_document_back(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    c.grant_consent(consent(case_id))
    doc = c.documents.write(case_id, actor=GP, kind="kartleggingsskjema",
                            category="kartlegging", text=PLAINTEXT)
    c.documents.share(case_id, doc.id, actor=GP, party="nav")
    assert c.documents.read(case_id, doc.id, actor=NAV).text == PLAINTEXT
    with pytest.raises(PermissionDenied):           # only the owner side revokes
        c.documents.revoke(case_id, doc.id, "nav", actor=NAV)
    assert c.documents.revoke(case_id, doc.id, "nav", actor=THERAPIST) is True
    with pytest.raises(NotShared):
        c.documents.read(case_id, doc.id, actor=NAV)
    back = c.documents.read(case_id, doc.id, actor=GP)
    assert (back.text, back.document.audience, back.document.shares) == (PLAINTEXT, "health", ())
    assert c.documents.revoke(case_id, doc.id, "nav", actor=THERAPIST) is False
    assert SHARE_REVOKED in kinds(c, case_id)


def test_a_nav_document_reaches_a_health_party_only_under_its_consent(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    doc = c.documents.write(case_id, actor=NAV, kind="note", category="work_status",
                            text="Arbeidsgiver tilbyr tilrettelegging fra mars.")
    assert c.documents.read(case_id, doc.id, actor=BRO).basis == "same_side"
    with pytest.raises(PermissionDenied):           # a health role shares no Nav document
        c.documents.share(case_id, doc.id, actor=GP, party="fastlege")
    with pytest.raises(InvalidInput):               # nor is it shared within its side
        c.documents.share(case_id, doc.id, actor=NAV, party="nav")
    c.grant_consent(consent(case_id, "coordination", "work_status", "fastlege"))
    c.documents.share(case_id, doc.id, actor=NAV, party="fastlege", purpose="coordination")
    assert c.documents.read(case_id, doc.id, actor=GP).basis == "consent"
    with pytest.raises(NotShared):                  # the therapist is another party
        c.documents.read(case_id, doc.id, actor=THERAPIST)


def test_refusals_without_a_side_or_a_case(any_coordinator: Coordinator,
                                           clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    doc = c.documents.write(case_id, actor=GP, kind="note", category="meeting_notes",
                            text=PLAINTEXT)
    with pytest.raises(NotCaseMember):
        c.documents.read(case_id, doc.id, actor=OUTSIDER)
    with pytest.raises(PermissionDenied):
        c.documents.read(case_id, doc.id, actor=AUDITOR)
    with pytest.raises(PermissionDenied):
        c.documents.write(case_id, actor=PERSON, kind="note", category="kartlegging",
                          text="x")
    with pytest.raises(InvalidInput):               # a Nav role writes no health category
        c.documents.write(case_id, actor=NAV, kind="note", category="kartlegging", text="x")
    with pytest.raises(InvalidInput):
        c.documents.write(case_id, actor=GP, kind="diary", category="kartlegging", text="x")
    other = open_case(c, clock, seed=4)
    with pytest.raises(DocumentNotFound):           # a document of another case
        c.documents.read(other, doc.id, actor=GP)


def test_a_new_revision_is_sealed_again_and_stale_writes_are_refused(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    doc = c.documents.write(case_id, actor=THERAPIST, kind="mestringsplan",
                            category="mestringsplan", text="Plan v1")
    new = c.documents.update(case_id, doc.id, actor=GP, text="Plan v2", expected_revision=1)
    assert (new.revision, new.row_version) == (2, 2)
    assert c.documents.read(case_id, doc.id, actor=THERAPIST).text == "Plan v2"
    with pytest.raises(StaleVersion):
        c.documents.update(case_id, doc.id, actor=GP, text="Plan v3", expected_revision=1)
    with pytest.raises(PermissionDenied):
        c.documents.update(case_id, doc.id, actor=NAV, text="Plan av Nav")


def test_a_ciphertext_moved_to_another_document_does_not_decrypt(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    """An attacker with write access to the database swaps ciphertexts between two
    documents of the same case and key: both reads are refused, nothing is shown."""
    c = any_coordinator
    case_id = open_case(c, clock)
    a = c.documents.write(case_id, actor=GP, kind="note", category="meeting_notes", text="A")
    b = c.documents.write(case_id, actor=GP, kind="note", category="meeting_notes", text="B")
    with c.uow() as uow:
        uow.documents.replace(dataclasses.replace(a, sealed=b.sealed, row_version=2), 1)
        uow.documents.replace(dataclasses.replace(b, revision=2, row_version=2), 1)
        uow.commit()
    for doc in (a, b):
        with pytest.raises(DecryptionFailed):
            c.documents.read(case_id, doc.id, actor=GP)


def test_rotation_rewraps_every_key_and_reencrypt_moves_every_document(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    texts: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
    for seed in range(3):
        case_id = open_case(c, clock, seed=seed)
        c.grant_consent(consent(case_id))
        for i in range(3):
            doc = c.documents.write(case_id, actor=GP, kind="note", category="kartlegging",
                                    text=f"{PLAINTEXT} #{seed}.{i}")
            texts[doc.id] = (case_id, f"{PLAINTEXT} #{seed}.{i}")
        c.documents.share(case_id, doc.id, actor=GP, party="nav")
    assert c.keys is not None
    old = c.keys.current_kek()
    seen: list[tuple[str, int, int]] = []
    report = c.key_rotation(batch=2, progress=lambda *p: seen.append(p)).rotate(
        reencrypt=False)
    assert report.kek_id != old and report.rewrapped == 6 and report.old_keks == (old,)
    assert seen[-1] == ("rewrap", 6, 6)
    with c.uow() as uow:
        assert uow.data_keys.kek_ids() == {report.kek_id}
    c.key_rotation().retire(old)
    for doc_id, (case_id, text) in texts.items():
        assert c.documents.read(case_id, doc_id, actor=GP).text == text
    clock.advance(minutes=1)        # the run re-keys what was made before it started
    again = c.key_rotation(batch=4).rotate(reencrypt=True)
    assert (again.data_keys, again.documents, again.destroyed) == (6, 9, 6)
    with c.uow() as uow:
        assert uow.documents.count_stale() == 0
        assert uow.data_keys.kek_ids() == {again.kek_id}
        versions = {uow.documents.get(d).key_version for d in texts}
    assert versions == {2}
    for doc_id, (case_id, text) in texts.items():
        assert c.documents.read(case_id, doc_id, actor=GP).text == text
    with pytest.raises(Conflict):                   # keys still need it
        c.key_rotation().retire(again.kek_id)
    assert c.verify_audit().ok


def test_erasure_shreds_the_keys_and_the_audit_trail_still_verifies(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    case_id = open_case(c, clock)
    keep = open_case(c, clock, seed=5)
    doc = c.documents.write(case_id, actor=GP, kind="note", category="kartlegging",
                            text=PLAINTEXT)
    kept = c.documents.write(keep, actor=GP, kind="note", category="kartlegging", text="bli")
    with pytest.raises(PermissionDenied):
        c.documents.erase(case_id, actor=GP, reason="nei")
    with pytest.raises(InvalidInput):
        c.documents.erase(case_id, actor=SYSTEM, reason=" ")
    report = c.documents.erase(case_id, actor=SYSTEM, reason="Sletting etter krav, sak 42")
    assert (report.documents, report.keys, report.already) == (1, 1, False)
    for call in (lambda: c.documents.read(case_id, doc.id, actor=GP),
                 lambda: c.documents.list(case_id, actor=GP),
                 lambda: c.documents.write(case_id, actor=GP, kind="note",
                                           category="kartlegging", text="ny")):
        with pytest.raises(CaseErased):
            call()
    with pytest.raises(NotCaseMember):              # a stranger still learns nothing
        c.documents.read(case_id, doc.id, actor=OUTSIDER)
    assert c.documents.erase(case_id, actor=SYSTEM, reason="igjen").already is True
    assert c.documents.read(keep, kept.id, actor=GP).text == "bli"
    with c.uow() as uow:
        assert uow.data_keys.newest(case_id, "health") is None
        erased = [e for e in uow.audit.query(case_id=case_id) if e.kind == CASE_ERASED]
    assert [e.data["reason"] for e in erased] == ["Sletting etter krav, sak 42"]
    assert c.verify_audit().ok


def test_a_session_summary_is_an_encrypted_health_document(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    from coordinator.intake.service import Intake

    c = any_coordinator
    case_id = open_case(c, clock)
    clock.advance(days=1)
    session = Intake(c).log_session(case_id, THERAPIST, held_on=clock.now().date(),
                                    minutes=45, kind="individual",
                                    summary="Økt 1: psykoedukasjon om angst.")
    got = c.documents.read(case_id, session.id, actor=GP)
    assert (got.text, got.document.kind, got.document.category) == (
        "Økt 1: psykoedukasjon om angst.", "session_summary", "session_summary")
    with pytest.raises(NotShared):
        c.documents.read(case_id, session.id, actor=NAV)
    c.documents.erase(case_id, actor=SYSTEM, reason="test")
    with pytest.raises(CaseErased):     # nothing is written: not the session either
        Intake(c).log_session(case_id, THERAPIST, held_on=clock.now().date(), minutes=30,
                              kind="individual", summary="Økt 2")
    with c.uow() as uow:
        assert [s.id for s in uow.sessions.for_case(case_id)] == [session.id]
