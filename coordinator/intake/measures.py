"""Scored instruments (PHQ-9, GAD-7) and work status: validation, totals, severity bands.

Pure. Bands are the published cut-offs (Kroenke et al. 2001 for PHQ-9, Spitzer et al. 2006
for GAD-7); the lower bound of each band is inclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from coordinator.errors import InvalidInput

PHASES = ("start", "end")


@dataclass(frozen=True)
class Instrument:
    key: str
    title: str
    items: int
    item_max: int
    bands: tuple[tuple[int, str], ...]      # (lowest total, band), ascending
    loinc_total: str                          # LOINC code of the total score

    @property
    def max_total(self) -> int:
        return self.items * self.item_max

    def band(self, total: int) -> str:
        found = self.bands[0][1]
        for low, name in self.bands:
            if total >= low:
                found = name
        return found


PHQ9 = Instrument("phq9", "PHQ-9", 9, 3, ((0, "minimal"), (5, "mild"), (10, "moderate"),
                                          (15, "moderately_severe"), (20, "severe")),
                  "44261-6")
GAD7 = Instrument("gad7", "GAD-7", 7, 3, ((0, "minimal"), (5, "mild"), (10, "moderate"),
                                          (15, "severe")), "70274-6")
INSTRUMENTS = {i.key: i for i in (PHQ9, GAD7)}

# Work status at start and end (domain brief §7): the closure outcomes plus sick leave.
WORK_STATUSES = ("in_work", "graded_sick_leave", "full_sick_leave", "study", "benefits")
WORK_STATUS = "work_status"

# Which recorded instruments satisfy each outcome measure a pilot definition names.
MEASURE_INSTRUMENTS = {"symptom_burden": ("phq9", "gad7"), "work_status": (WORK_STATUS,)}


@dataclass(frozen=True)
class Score:
    instrument: str
    items: tuple[int, ...]
    total: int
    band: str


def score(instrument: str, items: Sequence[object]) -> Score:
    """Validate the item answers (each an integer 0..item_max, exactly ``items`` of them)
    and compute total and band. Raises: InvalidInput naming the first bad item."""
    spec = INSTRUMENTS.get(instrument)
    if spec is None:
        raise InvalidInput(f"unknown instrument {instrument!r}", field="instrument")
    if len(items) != spec.items:
        raise InvalidInput(f"{spec.title} has {spec.items} items, got {len(items)}",
                           field="items")
    clean: list[int] = []
    for n, value in enumerate(items, start=1):
        if isinstance(value, bool) or not isinstance(value, int) \
                or not 0 <= value <= spec.item_max:
            raise InvalidInput(f"{spec.title} item {n} must be an integer 0-{spec.item_max}",
                               field=f"item{n}")
        clean.append(value)
    total = sum(clean)
    return Score(spec.key, tuple(clean), total, spec.band(total))


def check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise InvalidInput(f"phase must be one of {', '.join(PHASES)}", field="phase")
    return phase


def check_work_status(value: str) -> str:
    if value not in WORK_STATUSES:
        raise InvalidInput(f"work status must be one of {', '.join(WORK_STATUSES)}",
                           field="work_status")
    return value


def phase_complete(measures: Sequence[str], recorded: set[str]) -> bool:
    """Whether ``recorded`` instruments cover every pilot measure in ``measures``."""
    needed = {i for m in measures for i in MEASURE_INSTRUMENTS.get(m, (m,))}
    return bool(needed) and needed <= recorded
