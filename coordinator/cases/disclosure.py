"""What the case page and the history disclose, category by category (pure).

The workflow record and the event log hold case data: which outcome measures were
recorded, who the mestringsplan is shown to, which treatment sessions the person attended,
and free-text reasons written by health or Nav staff. Each piece is classified by data
category (``consent.model.CATEGORIES``); a team member sees a piece of the other side only
when ``gate.check`` allows that category for them now (a live consent covering
``coordination`` or the category's own sharing purpose, that category and the reader's
party). What is withheld is the content, never that a step happened: the event stays with
its kind, time, actor and states, but without reason and arguments.

Classification (see docs/consent.md, "What the case page and history hold"):

- record ``outcomes`` (phases measured), and every ``record_outcome`` event:
  ``outcome_scores``;
- record ``plan_visible_to`` and every event of a ``record_plan`` transition:
  ``mestringsplan``;
- meetings recorded on the case and meeting events, by meeting kind: treatment sessions
  (``course``, ``mastery_group``) are ``session_summary``, a GP update is
  ``meeting_notes``; joint meetings of the services (bli kjent, employer, closing, the GP
  appointment with Nav) are coordination metadata;
- any other free-text ``reason``: written by a health role, ``kartlegging`` before the
  joint start (referred, intake, consent) and ``session_summary`` after; written by a Nav
  role, ``work_status``; the brobygger writes as health (fail closed towards Nav);
- state, milestones, deadlines, finished tracks, episode and team changes are process
  metadata of the coordination every team member takes part in.

A reader always sees what they wrote themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, overload
from uuid import UUID

from coordinator.access.policy import HEALTH_ROLES, NAV_ROLES, TEAM_ROLES, Relation
from coordinator.cases import gate
from coordinator.cases.model import Actor, CaseEvent
from coordinator.consent.model import ConsentRecord
from coordinator.errors import UnknownWorkflow
from coordinator.workflows.definition import WorkflowDefinition

OUTCOME_SCORES = "outcome_scores"
MESTRINGSPLAN = "mestringsplan"
SESSION_SUMMARY = "session_summary"
MEETING_NOTES = "meeting_notes"
KARTLEGGING = "kartlegging"
WORK_STATUS = "work_status"

MEETING_CATEGORY: Mapping[str, str] = {
    "course": SESSION_SUMMARY, "mastery_group": SESSION_SUMMARY, "gp_update": MEETING_NOTES,
}
EFFECT_CATEGORY: Mapping[str, str] = {"record_outcome": OUTCOME_SCORES,
                                      "record_plan": MESTRINGSPLAN}
BEFORE_JOINT_START = frozenset({"referred", "intake", "consent"})

# The purposes under which a category may be read on the case page, in the order tried.
READ_PURPOSES: Mapping[str, tuple[str, ...]] = {
    KARTLEGGING: ("coordination", "share_kartlegging"),
    MESTRINGSPLAN: ("coordination", "share_mestringsplan"),
    SESSION_SUMMARY: ("coordination", "share_session_summaries"),
}

Definitions = Callable[[str, int], WorkflowDefinition]


@dataclass(frozen=True)
class CaseHistory(Sequence[CaseEvent]):
    """A case's events as the reader may see them, and the categories withheld."""

    events: tuple[CaseEvent, ...]
    withheld: tuple[str, ...] = ()

    @overload
    def __getitem__(self, index: int) -> CaseEvent: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[CaseEvent]: ...

    def __getitem__(self, index: int | slice) -> CaseEvent | Sequence[CaseEvent]:
        return self.events[index]

    def __len__(self) -> int:
        return len(self.events)


@dataclass(frozen=True)
class Shown:
    """The categories a reader was let see across sides (with the consent and purpose of
    each), and those withheld."""

    granted: Mapping[str, gate.Verdict] = field(default_factory=dict)
    purposes: Mapping[str, str] = field(default_factory=dict)
    withheld: frozenset[str] = frozenset()

    def allows(self, category: str | None) -> bool:
        return category is None or category not in self.withheld

    @property
    def crossed(self) -> dict[str, gate.Verdict]:
        """The categories read on a consent: the reads the access log must show."""
        return {c: v for c, v in self.granted.items() if v.basis == "consent"}


def _writer_category(role: str, from_state: str | None) -> str | None:
    if role in HEALTH_ROLES:            # the brobygger writes as health: fail closed
        return KARTLEGGING if from_state in BEFORE_JOINT_START else SESSION_SUMMARY
    if role in NAV_ROLES:
        return WORK_STATUS
    return None                          # the person's own words, the system's notes


def event_category(e: CaseEvent, definitions: Definitions) -> str | None:
    """The data category of what ``e`` carries besides metadata (None: nothing to gate)."""
    found: str | None = None
    if e.kind == "transitioned" and e.trigger is not None:
        try:
            d = definitions(e.workflow_key, e.workflow_version)
        except UnknownWorkflow:         # an unknown definition: fail closed
            return _writer_category(e.actor_role, e.from_state) or KARTLEGGING
        for t in d.transitions:
            if t.trigger != e.trigger:
                continue
            for effect in t.effects:
                if effect.name in EFFECT_CATEGORY:
                    found = EFFECT_CATEGORY[effect.name]
                elif effect.name == "record_meeting" and effect.args:
                    found = MEETING_CATEGORY.get(effect.args[0], found)
    elif e.kind.startswith("meeting_"):      # scheduled, rescheduled, cancelled, held
        found = MEETING_CATEGORY.get(str(e.data.get("kind", "")))
    if found is None and e.reason:
        found = _writer_category(e.actor_role, e.from_state)
    return found


def record_categories(record: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    if record.get("outcomes"):
        found.add(OUTCOME_SCORES)
    if record.get("plan_visible_to") is not None:
        found.add(MESTRINGSPLAN)
    for m in record.get("meetings") or ():
        category = MEETING_CATEGORY.get(str(m.get("kind", "")))
        if category is not None:
            found.add(category)
    return found


def filter_record(record: Mapping[str, Any], shown: Shown) -> dict[str, Any]:
    out = dict(record)
    if not shown.allows(OUTCOME_SCORES):
        out.pop("outcomes", None)
    if not shown.allows(MESTRINGSPLAN):
        out.pop("plan_visible_to", None)
    if "meetings" in out:
        out["meetings"] = [m for m in out["meetings"]
                           if shown.allows(MEETING_CATEGORY.get(str(m.get("kind", ""))))]
    return out


def _own(reader: Actor, e: CaseEvent) -> bool:
    return e.actor_id == reader.id and e.actor_role == reader.role


def event_categories(reader: Actor, events: Iterable[CaseEvent],
                     definitions: Definitions) -> dict[int, str]:
    """Each event's category by seq, leaving out the reader's own events."""
    out: dict[int, str] = {}
    for e in events:
        category = event_category(e, definitions)
        if category is not None and not _own(reader, e):
            out[e.seq] = category
    return out


def filter_events(events: Sequence[CaseEvent], categories: Mapping[int, str],
                  shown: Shown) -> list[CaseEvent]:
    return [e if shown.allows(categories.get(e.seq)) else replace(e, reason=None, data={})
            for e in events]


def decide(reader: Actor, relation: Relation, categories: Iterable[str],
           consents: Sequence[ConsentRecord], now: datetime) -> Shown:
    """Pass each category through the gate for ``reader``. Only team roles are filtered:
    the person reads their own case, the system actor is the trusted operator, and roles
    without content rights get no content at all (``team.without_content``)."""
    if reader.role not in TEAM_ROLES:
        return Shown()
    granted: dict[str, gate.Verdict] = {}
    purposes: dict[str, str] = {}
    withheld: set[str] = set()
    for category in sorted(set(categories)):
        verdict: gate.Verdict | None = None
        for purpose in READ_PURPOSES.get(category, ("coordination",)):
            verdict = gate.check(reader, relation, action=gate.READ, purpose=purpose,
                                 category=category, audience=None, consents=consents,
                                 now=now)
            if verdict.allowed:
                granted[category] = verdict
                purposes[category] = purpose
                break
        if category not in granted:
            withheld.add(category)
    return Shown(granted, purposes, frozenset(withheld))


def read_record(shown: Shown, via: str) -> tuple[dict[str, Any], UUID | None, str | None,
                                                 str | None]:
    """The data of the one access event a request writes for its cross-side reads, and
    its consent, purpose and category when there is just one of each."""
    crossed = shown.crossed
    cats = sorted(crossed)
    ids = {v.consent_id for v in crossed.values()}
    purposes = {shown.purposes[c] for c in cats}
    data: dict[str, Any] = {
        "basis": "consent", "via": via, "categories": cats,
        "consents": {c: str(crossed[c].consent_id) for c in cats},
        "purposes": {c: shown.purposes[c] for c in cats}}
    if shown.withheld:
        data["withheld"] = sorted(shown.withheld)
    return (data, ids.pop() if len(ids) == 1 else None,
            purposes.pop() if len(purposes) == 1 else None,
            cats[0] if len(cats) == 1 else None)
