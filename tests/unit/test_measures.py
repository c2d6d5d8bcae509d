"""PHQ-9 and GAD-7: item validation, totals, and both edges of every severity band."""

from __future__ import annotations

import pytest

from coordinator.errors import InvalidInput
from coordinator.intake.measures import GAD7, PHQ9, phase_complete, score


def items_for(total: int, n: int) -> list[int]:
    out = []
    for _ in range(n):
        out.append(min(3, total))
        total -= out[-1]
    assert total == 0
    return out


PHQ9_EDGES = [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
              (14, "moderate"), (15, "moderately_severe"), (19, "moderately_severe"),
              (20, "severe"), (27, "severe")]
GAD7_EDGES = [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
              (14, "moderate"), (15, "severe"), (21, "severe")]


@pytest.mark.parametrize(("total", "band"), PHQ9_EDGES)
def test_phq9_band_edges(total: int, band: str) -> None:
    s = score("phq9", items_for(total, 9))
    assert (s.total, s.band) == (total, band)


@pytest.mark.parametrize(("total", "band"), GAD7_EDGES)
def test_gad7_band_edges(total: int, band: str) -> None:
    s = score("gad7", items_for(total, 7))
    assert (s.total, s.band) == (total, band)


def test_the_edges_cover_every_band() -> None:
    assert {b for _, b in PHQ9_EDGES} == {name for _, name in PHQ9.bands}
    assert {b for _, b in GAD7_EDGES} == {name for _, name in GAD7.bands}
    assert (PHQ9.max_total, GAD7.max_total) == (27, 21)


@pytest.mark.parametrize(("instrument", "items", "field"), [
    ("phq9", [0] * 8, "items"),
    ("phq9", [0] * 10, "items"),
    ("gad7", [0] * 6 + [4], "item7"),
    ("gad7", [-1] + [0] * 6, "item1"),
    ("gad7", [True] + [0] * 6, "item1"),
    ("gad7", ["1"] + [0] * 6, "item1"),
    ("gad7", [1.0] + [0] * 6, "item1"),
    ("bdi", [0] * 21, "instrument"),
])
def test_bad_items_are_refused_by_name(instrument: str, items: list[object], field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        score(instrument, items)
    assert e.value.details["field"] == field


def test_a_phase_is_complete_when_every_named_measure_is_recorded() -> None:
    named = ("symptom_burden", "work_status")
    assert not phase_complete(named, {"phq9", "work_status"})
    assert phase_complete(named, {"phq9", "gad7", "work_status"})
    assert not phase_complete((), {"phq9"})
