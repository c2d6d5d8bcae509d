"""Every way of tampering with the audit trail is detected, and verify names the place.

Each test builds a real trail on SQLite or PostgreSQL (cases, consents, reads and a
signed checkpoint through the ``Coordinator``), tampers with the rows by plain SQL as an
attacker with database access would, and checks that ``verify_audit`` fails at the right
stream and sequence number (or checkpoint). Untouched trails verify.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, delete, select, text, update

from coordinator.audit.canonical import canonical, chain_hash, digest
from coordinator.audit.checkpoint import message
from coordinator.bootstrap import build
from coordinator.cases.commands import FireTrigger, GrantConsent, OpenCase
from coordinator.cases.model import Actor
from coordinator.crypto.audit_keys import Ed25519CheckpointSigner
from coordinator.demo import referral
from coordinator.persistence.tables import audit_checkpoints, audit_events, audit_heads
from coordinator.service import Coordinator
from coordinator.testing import FakeClock

GP = Actor("gp-1", "fastlege", "974589095")
NAV = Actor("nav-1", "nav_veileder", "889640782")
THERAPIST = Actor("kt-1", "kognitiv_terapeut")


@dataclass
class Trail:
    c: Coordinator
    engine: Engine
    case_ids: list[uuid.UUID]

    def stream(self, i: int = 0) -> str:
        return f"case:{self.case_ids[i]}"

    def exec(self, stmt: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(stmt)  # type: ignore[call-overload]

    def first_problem(self, **kw: object) -> str:
        report = self.c.verify_audit(**kw)  # type: ignore[arg-type]
        assert not report.ok
        assert report.first is not None
        return f"{report.first.code} @ {report.first.where}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def trail(request: pytest.FixtureRequest, clock: FakeClock) -> Trail:
    engine: Engine = request.getfixturevalue({"sqlite": "sqlite_engine",
                                              "postgres": "pg_engine"}[request.param])
    return _trail(engine, clock)


@pytest.fixture
def pg_trail(pg_engine: Engine, clock: FakeClock) -> Trail:
    return _trail(pg_engine, clock)


def _trail(engine: Engine, clock: FakeClock) -> Trail:
    c = build(engine=engine, clock=clock, signer=Ed25519CheckpointSigner.ephemeral())
    import random

    ids = []
    for _ in range(3):
        _ch, profile = referral("ringsaker", clock.now().date(), random.Random(7))
        case_id = c.open_case(OpenCase("ringsaker", "fastlege", profile, GP,
                                       subject_id="person-1", team=(NAV, THERAPIST))).id
        clock.advance(hours=1)
        c.fire(FireTrigger(case_id, "begin_intake", GP))
        c.grant_consent(GrantConsent(case_id, GP, frozenset({"coordination"}),
                                     frozenset({"kartlegging"}), frozenset({"nav"}),
                                     "signed_form", "v1", document_ref="arkiv/1"))
        c.read_data(case_id, actor=NAV, purpose="coordination", category="kartlegging")
        ids.append(case_id)
    c.checkpoint_audit()
    clock.advance(hours=1)
    for case_id in ids:                              # events after the checkpoint
        c.fire(FireTrigger(case_id, "complete_intake", GP))
    assert c.verify_audit().ok
    return Trail(c, engine, ids)


def _seq_row(t: Trail, stream: str, seq: int) -> dict[str, object]:
    with t.engine.connect() as conn:
        return dict(conn.execute(select(audit_events).where(
            audit_events.c.stream == stream, audit_events.c.seq == seq)).mappings().one())


def test_an_untouched_trail_verifies_in_full_per_case_and_incrementally(trail: Trail) -> None:
    full = trail.c.verify_audit()
    assert full.ok and full.checkpoints == 1 and full.events >= 15
    assert trail.c.verify_audit(case_id=trail.case_ids[1]).ok
    later = trail.c.verify_audit(since=trail.c.clock.now())
    assert later.ok and later.events == 3          # only the events after the checkpoint


def test_an_edited_body_is_named(trail: Trail) -> None:
    row = _seq_row(trail, trail.stream(1), 2)
    body = str(row["body"]).replace('"begin_intake"', '"close"')
    ae = audit_events.c
    trail.exec(update(audit_events).where(ae.id == row["id"]).values(body=body))
    assert trail.first_problem() == f"hash @ {trail.stream(1)} seq 2"


def test_an_edited_queryable_column_is_named(trail: Trail) -> None:
    row = _seq_row(trail, trail.stream(0), 4)      # the data_read by the Nav veileder
    ae = audit_events.c
    trail.exec(update(audit_events).where(ae.id == row["id"]).values(actor_id="someone-else"))
    assert trail.first_problem() == f"column @ {trail.stream(0)} seq 4"


def test_a_body_edited_with_recomputed_hashes_breaks_the_checkpoint(trail: Trail) -> None:
    """The forger rewrites an event and every hash after it, and the head: the signed
    checkpoint still remembers the old head (seq 4), which no longer matches."""
    stream = trail.stream(2)
    rows = [_seq_row(trail, stream, s) for s in (1, 2, 3, 4, 5)]
    prev = str(rows[0]["prev_hash"])
    for i, row in enumerate(rows):
        body = str(row["body"])
        if i == 1:
            body = body.replace('"begin_intake"', '"close"')
        h = chain_hash(prev, body.encode())
        trail.exec(update(audit_events).where(audit_events.c.id == row["id"])
                   .values(body=body, prev_hash=prev, hash=h))
        prev = h
    trail.exec(update(audit_heads).where(audit_heads.c.stream == stream).values(hash=prev))
    assert trail.first_problem() == f"checkpoint-head @ {stream} seq 4"


def test_a_deleted_event_is_named(trail: Trail) -> None:
    trail.exec(delete(audit_events).where(audit_events.c.stream == trail.stream(0),
                                          audit_events.c.seq == 3))
    assert trail.first_problem() == f"sequence @ {trail.stream(0)} seq 4"


def test_two_swapped_events_are_named(trail: Trail) -> None:
    """Swap the contents of seq 2 and 3 (ids and seqs stay in place)."""
    stream = trail.stream(1)
    a, b = _seq_row(trail, stream, 2), _seq_row(trail, stream, 3)
    fields = ("occurred_at", "kind", "actor_id", "actor_role", "actor_org", "purpose",
              "category", "audience", "consent_id", "outcome", "body", "prev_hash", "hash")
    for src, dst in ((a, b), (b, a)):
        trail.exec(update(audit_events).where(audit_events.c.id == dst["id"])
                   .values({f: src[f] for f in fields}))
    assert trail.first_problem() == f"link @ {stream} seq 2"


def test_swapped_sequence_numbers_are_named(trail: Trail) -> None:
    stream = trail.stream(1)
    a, b = _seq_row(trail, stream, 2), _seq_row(trail, stream, 3)
    ae = audit_events.c
    trail.exec(update(audit_events).where(ae.id == a["id"]).values(seq=-1))
    trail.exec(update(audit_events).where(ae.id == b["id"]).values(seq=2))
    trail.exec(update(audit_events).where(ae.id == a["id"]).values(seq=3))
    assert trail.first_problem() == f"link @ {stream} seq 2"


def test_a_truncated_tail_is_named_even_when_the_head_is_moved_back(trail: Trail) -> None:
    """Cut the chain below the checkpoint and rewrite the head row to match: the signed
    checkpoint still says how long the chain was."""
    stream = trail.stream(0)
    trail.exec(delete(audit_events).where(audit_events.c.stream == stream,
                                          audit_events.c.seq >= 3))
    last = _seq_row(trail, stream, 2)
    trail.exec(update(audit_heads).where(audit_heads.c.stream == stream)
               .values(seq=2, hash=last["hash"]))
    assert trail.first_problem() == f"truncated @ {stream} seq 2"


def test_a_truncated_tail_with_the_head_left_alone_is_named(trail: Trail) -> None:
    stream = trail.stream(2)
    trail.exec(delete(audit_events).where(audit_events.c.stream == stream,
                                          audit_events.c.seq == 5))
    assert trail.first_problem() == f"head @ {stream} seq 4"


def test_a_deleted_stream_is_named(trail: Trail) -> None:
    stream = trail.stream(1)
    trail.exec(delete(audit_events).where(audit_events.c.stream == stream))
    trail.exec(delete(audit_heads).where(audit_heads.c.stream == stream))
    assert trail.first_problem() == f"missing @ {stream}"


def test_a_forged_checkpoint_is_named(trail: Trail) -> None:
    """The attacker rewrites the checkpoint's root and hash consistently, but cannot sign
    the new message with the service's key (a key of their own does not verify)."""
    forger = Ed25519CheckpointSigner.ephemeral()
    with trail.engine.connect() as conn:
        cp = dict(conn.execute(select(audit_checkpoints)).mappings().one())
    root = "00" * 32
    msg = message(cp["seq"], cp["created_at"], cp["stream_count"], cp["event_count"], root,
                  cp["delta_digest"], cp["prev_hash"])
    trail.exec(update(audit_checkpoints).values(
        root=root, hash=digest(msg), signature=forger.sign(msg).hex()))
    assert trail.first_problem() == "checkpoint-signature @ checkpoint 1"


def test_an_edited_checkpoint_signature_is_named(trail: Trail) -> None:
    with trail.engine.connect() as conn:
        sig = str(conn.execute(select(audit_checkpoints.c.signature)).scalar_one())
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    trail.exec(update(audit_checkpoints).values(signature=flipped))
    assert trail.first_problem() == "checkpoint-signature @ checkpoint 1"


def test_a_deleted_checkpoint_head_row_is_named(trail: Trail) -> None:
    trail.exec(text("DELETE FROM audit_checkpoint_heads WHERE stream = :s")
               .bindparams(s=trail.stream(0)))
    assert trail.first_problem() == "checkpoint-delta @ checkpoint 1"


def test_canonical_bytes_are_stable() -> None:
    assert canonical({"b": 1, "a": [1, "æ"]}) == '{"a":[1,"æ"],"b":1}'.encode()


def test_incremental_verify_sees_an_edit_after_the_checkpoint(trail: Trail) -> None:
    row = _seq_row(trail, trail.stream(0), 5)      # complete_intake, after the checkpoint
    body = str(row["body"]).replace('"complete_intake"', '"close"')
    trail.exec(update(audit_events).where(audit_events.c.id == row["id"]).values(body=body))
    assert trail.first_problem(since=trail.c.clock.now()) == f"hash @ {trail.stream(0)} seq 5"


# -- the fast pass: row-id order and parallel scans (PostgreSQL) ------------------------------
@pytest.mark.postgres
def test_events_stored_out_of_id_order_still_verify(pg_trail: Trail) -> None:
    """Row ids are only a read order: a stream whose ids do not follow its seq numbers is
    read again in seq order and passes when its chain is intact."""
    stream = pg_trail.stream(2)
    a, b = _seq_row(pg_trail, stream, 2), _seq_row(pg_trail, stream, 3)
    ae = audit_events.c
    pg_trail.exec(update(audit_events).where(ae.id == a["id"]).values(id=-1))
    pg_trail.exec(update(audit_events).where(ae.id == b["id"]).values(id=a["id"]))
    pg_trail.exec(update(audit_events).where(ae.id == -1).values(id=b["id"]))
    assert pg_trail.c.verify_audit().ok
    assert pg_trail.c.verify_audit(jobs=2).ok


@pytest.mark.postgres
def test_a_parallel_verify_names_the_same_places(pg_trail: Trail) -> None:
    assert pg_trail.c.verify_audit(jobs=3).ok
    row = _seq_row(pg_trail, pg_trail.stream(1), 2)
    pg_trail.exec(update(audit_events).where(audit_events.c.id == row["id"])
                  .values(body=str(row["body"]).replace("gp-1", "gp-2")))
    pg_trail.exec(delete(audit_events).where(audit_events.c.stream == pg_trail.stream(2),
                                             audit_events.c.seq == 3))
    serial, parallel = pg_trail.c.verify_audit(), pg_trail.c.verify_audit(jobs=3)
    assert [str(p) for p in parallel.problems] == [str(p) for p in serial.problems]
    assert {(p.code, p.stream, p.seq) for p in serial.problems} >= {
        ("hash", pg_trail.stream(1), 2), ("sequence", pg_trail.stream(2), 4)}
    assert parallel.events == serial.events and parallel.streams == serial.streams
