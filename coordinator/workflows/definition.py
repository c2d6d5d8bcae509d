"""The data a pilot workflow definition is made of. Pure: no behaviour beyond validation helpers.

A definition file (``definitions/<pilot>_v<N>.py``) builds one ``WorkflowDefinition`` named
``DEFINITION``. Everything that varies between pilots lives here as data; the guard and
effect functions it names live in ``guards.py`` and are shared by all pilots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class State(StrEnum):
    """Canonical case states. A definition uses a subset (the consent gate may move)."""

    REFERRED = "referred"            # henvisning received
    INTAKE = "intake"                # kartlegging under way
    CONSENT = "consent"              # waiting for samtykke
    GET_TO_KNOW = "get_to_know"      # bli kjent-samtale scheduled
    PLANNING = "planning"            # bli kjent held, mestringsplan being made
    FOLLOW_UP = "follow_up"          # oppfølging
    CLOSING = "closing"              # avslutningssamtale
    CLOSED = "closed"
    DECLINED = "declined"            # not eligible, or the person said no before starting
    WITHDRAWN = "withdrawn"          # the person withdrew
    DROPPED_OUT = "dropped_out"      # lost to follow-up


EXIT_STATES = frozenset({State.DECLINED, State.WITHDRAWN, State.DROPPED_OUT})
CLOSED_STATES = EXIT_STATES | {State.CLOSED}

# Roles that can take part in a case or its meetings. Access rules per role are elsewhere.
ROLES = frozenset({
    "bruker", "nav_veileder", "jobbspesialist", "syfo_veileder", "brobygger",
    "kognitiv_terapeut", "rph_behandler", "fastlege", "arbeidsgiver", "prosjektleder",
})

# Who may send a referral into a pilot (the channel, not the person).
REFERRAL_CHANNELS = frozenset({"rph_intake", "fastlege", "self_referral", "nav"})

# Problem groups used by eligibility rules.
TARGET_GROUPS = frozenset({
    "mental_mild_moderate", "msk", "sleep", "substance_early", "substance",
})

SIDES = frozenset({"health", "nav"})


@dataclass(frozen=True)
class Guard:
    """A named pure check with fixed arguments, resolved in ``guards.GUARDS``."""

    name: str
    args: tuple[str, ...] = ()

    def label(self) -> str:
        return f"{self.name}({', '.join(self.args)})" if self.args else self.name


@dataclass(frozen=True)
class Effect:
    """A named pure update of the case record applied after a transition succeeds."""

    name: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class T:
    """One transition: ``trigger`` from ``source`` to ``dest`` (``None`` stays in place)."""

    trigger: str
    source: str | tuple[str, ...]
    dest: str | None
    guards: tuple[Guard, ...] = ()
    effects: tuple[Effect, ...] = ()

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,) if isinstance(self.source, str) else self.source


@dataclass(frozen=True)
class Eligibility:
    """Who a pilot takes in. Bounds are inclusive; ``None`` means no bound."""

    min_age: int | None = None
    max_age: int | None = None
    max_sick_leave_weeks: int | None = None    # weeks on sick leave at the check
    target_groups: frozenset[str] = frozenset({"mental_mild_moderate"})
    requires_employment: bool = False          # has a job (or sick leave from one)
    requires_rph_treatment: bool = False       # already in RPH treatment (Nesodden)


@dataclass(frozen=True)
class Deadline:
    """``name`` is due ``workdays`` Norwegian workdays or ``weeks`` weeks after ``anchor``.

    ``anchor`` is ``"referred"``, ``"sick_leave_start"`` or ``"trigger:<name>"`` (the first
    time that trigger fired). The deadline is met when ``met_by`` (a trigger) has fired.
    """

    name: str
    anchor: str
    met_by: str
    workdays: int | None = None
    weeks: int | None = None


@dataclass(frozen=True)
class Cadence:
    """A recurring meeting the pilot runs (reminders are planned from these)."""

    meeting: str
    every: str                              # weekly, twice_weekly, monthly, half_yearly, fixed
    participants: tuple[str, ...]
    with_user: bool = False
    per_case: bool = False                  # per case (True) or a service-level meeting


CADENCE_PERIODS = frozenset({"weekly", "twice_weekly", "monthly", "half_yearly", "fixed", "annual"})


@dataclass(frozen=True)
class FollowUp:
    max_weeks: int | None = None
    therapy_hours: tuple[int, int] | None = None     # (min, max) hours per person
    course_sessions: int | None = None
    employer_involvement: str = "not_stated"          # not_stated, planned, as_needed, yes


EMPLOYER_INVOLVEMENT = frozenset({"not_stated", "planned", "as_needed", "yes"})


@dataclass(frozen=True)
class Outcomes:
    """Measures taken at start and end; ``required_to_close`` makes closing wait for both."""

    measures: tuple[str, ...] = ()
    required_to_close: bool = False


@dataclass(frozen=True)
class Migration:
    """How cases on ``from_version`` move onto this version: old state → new state or None.

    A state mapped to ``None`` (or absent) cannot move; ``reasons`` says why, per state.
    """

    from_version: int
    states: Mapping[str, str | None]
    reasons: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkflowDefinition:
    key: str
    version: int
    title: str
    model: int
    states: tuple[str, ...]
    initial: str
    final: tuple[str, ...]
    transitions: tuple[T, ...]
    referrers: tuple[str, ...]
    eligibility: Eligibility = Eligibility()
    deadlines: tuple[Deadline, ...] = ()
    cadences: tuple[Cadence, ...] = ()
    get_to_know_participants: tuple[str, ...] = ()
    follow_up: FollowUp = FollowUp()
    outcomes: Outcomes = Outcomes()
    closing_sides: tuple[str, ...] = ()       # sides that must finish before closing
    migrates_from: Migration | None = None
    sources: Mapping[str, str] = field(default_factory=dict)   # topic -> domain citation

    @property
    def ref(self) -> tuple[str, int]:
        return (self.key, self.version)

    def triggers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.trigger for t in self.transitions))
