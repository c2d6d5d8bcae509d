"""The fast verification pass (``audit.verify.scan``) agrees with the canonical body.

The pass compares each body with the canonical rendering of its columns around the
``data`` field instead of decoding it, so these tests pin that rendering to
``canonical(body_of(...))`` for awkward values, and check that a changed column, a
reordered stream or a broken join between two parts makes the stream a suspect.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.audit.canonical import genesis
from coordinator.audit.events import COLUMNS, ROW, AuditEvent, Row, seal
from coordinator.audit.verify import ChainVerifier, Report, merge, scan

T0 = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
texts = st.text(max_size=12)          # quotes, backslashes, control and non-ASCII characters
maybe = st.none() | texts


def _chain(case_id: uuid.UUID, n: int, **fields: Any) -> list[Row]:
    stream, prev, rows = f"case:{case_id}", genesis(f"case:{case_id}"), []
    for seq in range(1, n + 1):
        ev = seal(AuditEvent(fields.get("kind", "data_read"), T0 + timedelta(microseconds=seq),
                             fields.get("actor_id", "nav-1"), fields.get("actor_role", "nav"),
                             case_id=case_id, actor_org=fields.get("actor_org"),
                             person_key=fields.get("person_key"),
                             purpose=fields.get("purpose"), category=fields.get("category"),
                             audience=fields.get("audience"), consent_id=case_id,
                             outcome=fields.get("outcome", "ok"),
                             data=fields.get("data", {"n": seq})), seq, prev)
        assert ev.stream == stream
        rows.append(ev.as_row())
        prev = ev.hash
    return rows


@settings(max_examples=200, deadline=None)
@given(kind=texts, actor_id=texts, actor_role=texts, actor_org=maybe, person_key=maybe,
       purpose=maybe, category=maybe, audience=maybe, outcome=texts,
       data=st.dictionaries(texts, texts | st.integers(), max_size=3))
def test_sealed_events_pass_whatever_their_values(**fields: Any) -> None:
    rows = _chain(uuid.UUID(int=7), 3, **fields)
    result = scan(rows)
    assert not result.suspects and result.events == 3


@given(column=st.sampled_from([c for c in COLUMNS if c not in ("stream", "seq")]),
       value=texts)
def test_any_edited_column_makes_the_stream_a_suspect(column: str, value: str) -> None:
    rows = _chain(uuid.UUID(int=8), 3, person_key="p-1", purpose="coordination")
    i = ROW.index(column)
    if rows[1][i] == value:
        return
    rows[1] = (*rows[1][:i], value, *rows[1][i + 1:])
    assert scan(rows).suspects == {"case:" + str(uuid.UUID(int=8))}


def test_interleaved_streams_pass_and_a_reordered_one_is_reread_in_order() -> None:
    a, b = _chain(uuid.UUID(int=1), 4), _chain(uuid.UUID(int=2), 4)
    interleaved = [r for pair in zip(a, b, strict=True) for r in pair]
    assert not scan(interleaved).suspects
    swapped = [b[0], b[2], b[1], b[3], *a]           # b's rows out of seq order
    result = scan(swapped)
    assert result.suspects == {b[0][0]}
    heads = {a[-1][0]: (4, a[-1][16]), b[-1][0]: (4, b[-1][16])}
    reread: list[str] = []

    def in_order(stream: str, after: int) -> list[Row]:
        reread.append(stream)
        return [r for r in (b if stream == b[0][0] else a) if r[1] > after]

    report = ChainVerifier(Report(), heads=heads).finish(result, in_order, heads)
    assert report.ok and reread == [b[0][0]] and report.events == 8 and report.streams == 2


def test_parts_join_only_where_the_chain_continues() -> None:
    rows = _chain(uuid.UUID(int=3), 6)
    joined = merge([scan(rows[:2]), scan(rows[2:4]), scan(rows[4:])])
    assert not joined.suspects and joined.segments[rows[0][0]][2:] == [6, rows[-1][16]]
    gap = merge([scan(rows[:2]), scan(rows[3:])])
    assert gap.suspects == {rows[0][0]}


def test_a_stream_that_does_not_reach_its_head_is_named_after_a_reread() -> None:
    rows = _chain(uuid.UUID(int=4), 3)
    heads = {rows[0][0]: (4, "f" * 64)}
    report = ChainVerifier(Report(), heads=heads).finish(
        scan(rows), lambda s, after: rows, heads)
    assert report.first is not None and report.first.code == "head"
