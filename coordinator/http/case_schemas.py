"""Pydantic models of the case endpoints: what callers send (``XWrite``) and get (``XRead``).

All ``extra="forbid"``. Free text that ends up in the database is limited in length and may
not carry control characters (PostgreSQL refuses NUL in text and JSON), so bad input is a
422 and never reaches the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from coordinator.cases.commands import CaseSummary
from coordinator.cases.model import CaseEvent, Member
from coordinator.consent.model import ConsentRecord
from coordinator.workflows.deadlines import DeadlineStatus

# Identifiers: printable, no spaces, no control characters.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
Ident = Annotated[str, Field(pattern=ID_PATTERN, examples=["demo-ringsaker-fastlege"])]
Key = Annotated[str, Field(pattern=KEY_PATTERN)]
MAX_ARGS_CHARS = 8192


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- reads ----------------------------------------------------------------------------------
class CaseSummaryRead(_Model):
    """A case's metadata: what every viewer of the case may see."""

    id: UUID
    pilot: str
    workflow_version: int
    state: str
    version: int = Field(description="Send it back as `If-Match` to change the case")
    referrer: str
    referred_at: AwareDatetime
    updated_at: AwareDatetime
    closed_at: AwareDatetime | None

    @classmethod
    def of(cls, s: CaseSummary) -> CaseSummaryRead:
        return cls(id=s.id, pilot=s.pilot, workflow_version=s.workflow_version, state=s.state,
                   version=s.version, referrer=s.referrer, referred_at=s.referred_at,
                   updated_at=s.updated_at, closed_at=s.closed_at)


class CasePage(_Model):
    """One page of cases, ordered by id. ``next`` is the next page's URL (null: last page)."""

    items: list[CaseSummaryRead]
    limit: int
    next_cursor: UUID | None = Field(description="Pass as `after` for the next page")
    next: str | None


class ActionRead(_Model):
    """A trigger that leaves the case's current state, and whether the caller may fire it
    now. ``reasons`` says why not: failed guards (``guard=reason``) or a permission."""

    trigger: str
    allowed: bool
    targets: list[str]
    reasons: list[str]


class DeadlineRead(_Model):
    name: str
    status: Literal["not_started", "pending", "met", "overdue", "cancelled"]
    due_at: AwareDatetime | None
    met_at: AwareDatetime | None

    @classmethod
    def of(cls, d: DeadlineStatus) -> DeadlineRead:
        return cls.model_validate({"name": d.name, "status": d.status, "due_at": d.due_at,
                                   "met_at": d.met_at})


class MemberRead(_Model):
    actor_id: str
    role: str
    added_at: AwareDatetime
    added_by: str

    @classmethod
    def of(cls, m: Member) -> MemberRead:
        return cls(actor_id=m.actor_id, role=m.role, added_at=m.added_at, added_by=m.added_by)


class ConsentRead(_Model):
    """One consent record. A withdrawal is a record of its own; records never change."""

    id: UUID
    kind: Literal["grant", "withdrawal"]
    purposes: list[str]
    categories: list[str]
    parties: list[str]
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None
    method: str
    form_version: str
    form_digest: str = ""
    given_by: str = "person"
    channel: str | None = None
    recorded_at: AwareDatetime
    recorded_by: str
    recorded_role: str

    @classmethod
    def of(cls, r: ConsentRecord) -> ConsentRead:
        return cls.model_validate({
            "id": r.id, "kind": r.kind, "purposes": sorted(r.purposes),
            "categories": sorted(r.categories), "parties": sorted(r.parties),
            "valid_from": r.valid_from, "valid_to": r.valid_to, "method": r.method,
            "form_version": r.form_version, "form_digest": r.form_digest,
            "given_by": r.given_by, "channel": r.channel, "recorded_at": r.recorded_at,
            "recorded_by": r.recorded_by, "recorded_role": r.recorded_role})


class ConsentPage(_Model):
    items: list[ConsentRead]
    total: int
    limit: int
    offset: int
    next: str | None


class EventRead(_Model):
    """One history entry. Without content rights (the auditor) ``reason`` is null and
    ``data`` empty: who did what when, not why."""

    seq: int
    kind: str
    occurred_at: AwareDatetime
    actor_id: str
    actor_role: str
    from_state: str | None
    to_state: str
    trigger: str | None
    reason: str | None
    workflow_key: str
    workflow_version: int
    data: dict[str, Any]

    @classmethod
    def of(cls, e: CaseEvent) -> EventRead:
        return cls(seq=e.seq, kind=e.kind, occurred_at=e.occurred_at, actor_id=e.actor_id,
                   actor_role=e.actor_role, from_state=e.from_state, to_state=e.to_state,
                   trigger=e.trigger, reason=e.reason, workflow_key=e.workflow_key,
                   workflow_version=e.workflow_version, data=dict(e.data))


class HistoryPage(_Model):
    """Events whose content is of a category the caller may not read now (the other
    side's data without a live consent) keep their metadata but carry no reason or data;
    ``withheld`` names those categories."""

    items: list[EventRead]
    withheld: list[str] = Field(default_factory=list,
                                description="Data categories left out: no live consent")
    limit: int
    next_cursor: int | None = Field(description="Pass as `after` (a seq) for the next page")
    next: str | None


class CaseRead(_Model):
    """The case page: everything a team member needs for the next step. Without content
    rights (the auditor) ``actions``, ``team`` and ``record`` are empty and ``content`` is
    false. A team member sees the other side's data categories only under a live consent;
    ``withheld`` lists those left out of ``record``."""

    case: CaseSummaryRead
    content: bool
    actions: list[ActionRead]
    deadlines: list[DeadlineRead]
    team: list[MemberRead]
    record: dict[str, Any]
    consents: list[ConsentRead] = Field(description="The newest consent records (at most "
                                                    "20); all of them under /consents")
    consents_total: int
    withheld: list[str] = Field(default_factory=list,
                                description="Data categories of the other side left out of "
                                            "record and history: no live consent covers "
                                            "them for the caller now")


class CaseCountRead(_Model):
    pilot: str | None = Field(description="null when counted per state only")
    state: str | None = Field(description="null when counted per pilot only")
    count: int | None = Field(description="null when 1 to 4 cases (small-cell suppression)")


class CaseStatsRead(_Model):
    """Aggregates for project management: counts only, no case ids."""

    total: int = Field(description="The sum of the counts shown (suppressed cells left out, "
                                   "so they cannot be worked out by subtraction)")
    items: list[CaseCountRead]
    limit: int
    offset: int
    next: str | None


# -- writes ---------------------------------------------------------------------------------
class ProfileWrite(_Model):
    """What the referral says about the person, as far as eligibility needs it."""

    birth_date: date = Field(examples=["1990-05-17"])
    problems: list[Key] = Field(min_length=1, max_length=10,
                                examples=[["mental_mild_moderate"]])
    employed: bool = True
    sick_leave_start: date | None = None
    sick_leave_grade: Literal["none", "pending", "partial", "full"] = "none"
    in_rph_treatment: bool = False

    @field_validator("birth_date", "sick_leave_start")
    @classmethod
    def _plausible(cls, v: date | None) -> date | None:
        if v is not None and not 1900 <= v.year <= 2200:
            raise ValueError("the year must be between 1900 and 2200")
        return v


class TeamMemberWrite(_Model):
    actor_id: Ident
    role: Key = Field(examples=["nav_veileder"])


class OpenCaseWrite(_Model):
    """A referral: the pilot, the channel it came through, and the person's profile."""

    pilot: Key = Field(examples=["ringsaker"])
    referrer: Key = Field(examples=["fastlege"], description="The referral channel")
    profile: ProfileWrite
    subject_id: Ident | None = Field(default=None,
                                     description="The person's pseudonymous user id")
    workflow_version: int | None = Field(default=None, ge=1, le=1000)
    team: list[TeamMemberWrite] = Field(default_factory=list, max_length=20)


def _clean(value: Any, depth: int = 0) -> None:
    if depth > 4:
        raise ValueError("arguments are nested too deeply")
    if isinstance(value, str):
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
            raise ValueError("control characters are not allowed")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _clean(k, depth + 1)
            _clean(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _clean(v, depth + 1)


class TransitionWrite(_Model):
    """Fire ``trigger`` on the case. ``expected_version`` (or the ``If-Match`` header) makes
    it conditional: a case that moved on in the meantime answers 412."""

    trigger: Key = Field(examples=["begin_intake"])
    args: dict[str, Any] = Field(default_factory=dict, examples=[{}])
    expected_version: int | None = Field(default=None, ge=0)

    @field_validator("args")
    @classmethod
    def _args(cls, v: dict[str, Any]) -> dict[str, Any]:
        _clean(v)
        if len(repr(v)) > MAX_ARGS_CHARS:
            raise ValueError(f"arguments longer than {MAX_ARGS_CHARS} characters")
        return v


_Scopes = Annotated[list[Key], Field(min_length=1, max_length=10)]


class ConsentWrite(_Model):
    """A consent the person gives: purposes × categories × parties."""

    purposes: _Scopes = Field(examples=[["coordination"]])
    categories: _Scopes = Field(examples=[["kartlegging", "work_status"]])
    parties: _Scopes = Field(examples=[["nav"]])
    method: Key = Field(examples=["signed_form"])
    form_version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")] = Field(
        examples=["v1"])
    valid_to: AwareDatetime | None = None


class WithdrawalWrite(_Model):
    """Withdraw consent for the listed scopes (from every earlier grant)."""

    purposes: _Scopes = Field(examples=[["coordination"]])
    categories: _Scopes = Field(examples=[["kartlegging"]])
    parties: _Scopes = Field(examples=[["nav"]])
    method: Key = Field(examples=["digital"])
