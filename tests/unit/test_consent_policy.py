"""Which consent scopes are live at a moment (grants, expiry, partial withdrawal)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from coordinator.consent.model import ConsentRecord
from coordinator.consent.policy import live_scopes, purposes_by_party

CASE = uuid.uuid4()
T0 = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def record(kind: str, recorded: datetime, purposes: set[str], categories: set[str],
           parties: set[str], *, valid_from: datetime | None = None,
           valid_to: datetime | None = None) -> ConsentRecord:
    return ConsentRecord(uuid.uuid4(), CASE, kind, frozenset(purposes), frozenset(categories),
                         frozenset(parties), valid_from or recorded, valid_to, "digital",
                         "v1" if kind == "grant" else "", recorded, "gp-1", "fastlege")


def grant(recorded: datetime, purposes: set[str], categories: set[str], parties: set[str],
          **kw: datetime | None) -> ConsentRecord:
    return record("grant", recorded, purposes, categories, parties, **kw)


def withdrawal(recorded: datetime, purposes: set[str], categories: set[str],
               parties: set[str]) -> ConsentRecord:
    return record("withdrawal", recorded, purposes, categories, parties)


SHARE = grant(at(0), {"coordination", "share_kartlegging"}, {"kartlegging", "mestringsplan"},
              {"nav", "employer"})
ALL_SHARE = frozenset((p, c, a) for p in ("coordination", "share_kartlegging")
                      for c in ("kartlegging", "mestringsplan") for a in ("nav", "employer"))


def test_no_records_no_scopes() -> None:
    assert live_scopes([], at(1)) == frozenset()


def test_a_grant_in_force_gives_every_combination_of_its_scopes() -> None:
    assert live_scopes([SHARE], at(1)) == ALL_SHARE
    assert len(ALL_SHARE) == 8
    assert live_scopes([SHARE], at(0)) == ALL_SHARE           # from the recorded moment


def test_a_grant_recorded_after_now_is_ignored() -> None:
    assert live_scopes([SHARE], at(-1)) == frozenset()


def test_a_grant_not_yet_valid_gives_nothing_until_valid_from() -> None:
    later = grant(at(0), {"coordination"}, {"kartlegging"}, {"nav"}, valid_from=at(24))
    assert live_scopes([later], at(23.9)) == frozenset()
    assert live_scopes([later], at(24)) == {("coordination", "kartlegging", "nav")}


def test_an_expired_grant_gives_nothing_from_valid_to() -> None:
    brief = grant(at(0), {"coordination"}, {"kartlegging"}, {"nav"}, valid_to=at(48))
    assert live_scopes([brief], at(47.9)) == {("coordination", "kartlegging", "nav")}
    assert live_scopes([brief], at(48)) == frozenset()
    assert live_scopes([brief], at(1000)) == frozenset()


def test_a_withdrawal_removes_only_the_scopes_it_names() -> None:
    partial = withdrawal(at(2), {"share_kartlegging"}, {"kartlegging"}, {"employer"})
    live = live_scopes([SHARE, partial], at(3))
    assert live == ALL_SHARE - {("share_kartlegging", "kartlegging", "employer")}
    # Before the withdrawal was recorded it has no effect.
    assert live_scopes([SHARE, partial], at(1)) == ALL_SHARE


def test_a_withdrawal_of_a_whole_party_leaves_the_other_party() -> None:
    nav_out = withdrawal(at(2), {"coordination", "share_kartlegging"},
                         {"kartlegging", "mestringsplan"}, {"nav"})
    assert live_scopes([SHARE, nav_out], at(3)) == {s for s in ALL_SHARE if s[2] == "employer"}


def test_a_grant_after_a_withdrawal_grants_again() -> None:
    out = withdrawal(at(2), {"coordination"}, {"kartlegging"}, {"nav"})
    again = grant(at(4), {"coordination"}, {"kartlegging"}, {"nav"})
    assert ("coordination", "kartlegging", "nav") not in live_scopes([SHARE, out, again], at(3))
    assert ("coordination", "kartlegging", "nav") in live_scopes([SHARE, out, again], at(4))


def test_a_withdrawal_does_not_block_a_later_grant_whatever_the_list_order() -> None:
    out = withdrawal(at(2), {"coordination"}, {"kartlegging"}, {"nav"})
    again = grant(at(4), {"coordination"}, {"kartlegging"}, {"nav"})
    assert live_scopes([again, out, SHARE], at(5)) == live_scopes([SHARE, out, again], at(5))
    assert live_scopes([again, out, SHARE], at(5)) == ALL_SHARE


def test_a_withdrawal_and_a_grant_recorded_at_the_same_moment_fail_closed() -> None:
    out = withdrawal(at(2), {"coordination"}, {"kartlegging"}, {"nav"})
    same = grant(at(2), {"coordination"}, {"kartlegging"}, {"nav"})
    for order in ([SHARE, same, out], [SHARE, out, same]):
        assert ("coordination", "kartlegging", "nav") not in live_scopes(order, at(3))


def test_a_withdrawal_before_any_grant_has_nothing_to_remove() -> None:
    early = withdrawal(at(-5), {"coordination"}, {"kartlegging"}, {"nav"})
    assert live_scopes([early, SHARE], at(1)) == ALL_SHARE


def test_an_overlapping_grant_keeps_a_scope_after_another_expires() -> None:
    short = grant(at(0), {"coordination"}, {"kartlegging"}, {"nav"}, valid_to=at(10))
    long = grant(at(1), {"coordination"}, {"kartlegging"}, {"nav"})
    assert live_scopes([short, long], at(20)) == {("coordination", "kartlegging", "nav")}


def test_purposes_by_party_projects_away_the_category() -> None:
    scopes = [("coordination", "kartlegging", "nav"), ("coordination", "mestringsplan", "nav"),
              ("share_kartlegging", "kartlegging", "employer")]
    assert purposes_by_party(scopes) == {("coordination", "nav"),
                                         ("share_kartlegging", "employer")}
    assert purposes_by_party([]) == frozenset()


def test_purposes_by_party_keeps_a_pair_while_any_category_is_live() -> None:
    out = withdrawal(at(2), {"coordination"}, {"kartlegging"}, {"nav"})
    pairs = purposes_by_party(live_scopes([SHARE, out], at(3)))
    assert ("coordination", "nav") in pairs                  # mestringsplan is still shared
    out_all = withdrawal(at(3), {"coordination"}, {"mestringsplan"}, {"nav"})
    pairs = purposes_by_party(live_scopes([SHARE, out, out_all], at(4)))
    assert ("coordination", "nav") not in pairs
    assert ("share_kartlegging", "nav") in pairs
