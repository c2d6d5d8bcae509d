"""Case endpoints: each user's job over the Coordinator's use cases.

Every route passes the caller's actor to the core, which decides need-to-know
(``access.policy``): a case the caller may not know of is a 404 exactly like a missing one,
a case it may see but not change this way is a 403. Nothing here filters by role itself,
except that the case page marks actions the caller's role may not fire.

- ``GET /api/v1/me/cases``: the caller's cases (team member's, or a bruker's own)
- ``GET /api/v1/cases``: every case's metadata (auditor)
- ``POST /api/v1/cases``: open a case (a referral)
- ``GET /api/v1/cases/{id}``: the case page (``ETag`` = version)
- ``GET /api/v1/cases/{id}/history``: the event log
- ``POST /api/v1/cases/{id}/transitions``: fire a trigger (``If-Match`` = version)
- ``POST /api/v1/cases/{id}/team``: add a team member
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response, status

from coordinator.access.policy import BRUKER, Relation, decide, trigger_permission
from coordinator.cases.commands import CaseView, FireTrigger, OpenCase
from coordinator.cases.model import Actor
from coordinator.errors import InvalidInput, PermissionDenied
from coordinator.http.auth import CurrentActor
from coordinator.http.case_schemas import (
    KEY_PATTERN,
    ActionRead,
    CasePage,
    CaseRead,
    CaseSummaryRead,
    ConsentRead,
    DeadlineRead,
    EventRead,
    HistoryPage,
    MemberRead,
    OpenCaseWrite,
    TeamMemberWrite,
    TransitionWrite,
)
from coordinator.http.deps import CoordinatorDep
from coordinator.http.pagination import DEFAULT_LIMIT, Limit, next_url
from coordinator.http.routers._problems import problems
from coordinator.workflows.facts import Profile

router = APIRouter(prefix="/api/v1", tags=["cases"])

CONSENTS_ON_PAGE = 20
IF_MATCH = r'^(\*|"[0-9]{1,9}")$'
CaseId = UUID


def etag(version: int) -> str:
    return f'"{version}"'


def _case_page(items: list[CaseSummaryRead], limit: int, request: Request) -> CasePage:
    last = items[-1].id if len(items) == limit else None
    return CasePage(items=items, limit=limit, next_cursor=last,
                    next=None if last is None else next_url(request, after=last))


@router.get("/me/cases", response_model=CasePage, responses=problems())
def my_cases(actor: CurrentActor, coordinator: CoordinatorDep, request: Request,
             after: UUID | None = None, limit: Limit = DEFAULT_LIMIT) -> CasePage:
    """The caller's cases, by id: those whose team the caller is on (in the token's role),
    or for a bruker the cases about them. Follow ``next`` for more."""
    items = [CaseSummaryRead.of(s) for s in coordinator.my_cases(actor, after=after, limit=limit)]
    return _case_page(items, limit, request)


@router.get("/cases", response_model=CasePage, responses=problems(403))
def list_cases(actor: CurrentActor, coordinator: CoordinatorDep, request: Request,
               pilot: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
               state: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
               after: UUID | None = None, limit: Limit = DEFAULT_LIMIT) -> CasePage:
    """Every case's metadata (no content), for the auditor; filter by pilot and state."""
    items = [CaseSummaryRead.of(s) for s in coordinator.list_cases(
        pilot=pilot, state=state, after=after, limit=limit, actor=actor)]
    return _case_page(items, limit, request)


@router.post("/cases", response_model=CaseSummaryRead, status_code=status.HTTP_201_CREATED,
             responses=problems(403, 404, body=True))
def open_case(body: OpenCaseWrite, actor: CurrentActor, coordinator: CoordinatorDep,
              response: Response) -> CaseSummaryRead:
    """Open a case from a referral. The caller (when a team role) and ``team`` become its
    team. A bruker may refer only themself (``subject_id`` = their own id)."""
    p = body.profile
    profile = Profile(birth_date=p.birth_date, problems=frozenset(p.problems),
                      employed=p.employed, sick_leave_start=p.sick_leave_start,
                      sick_leave_grade=p.sick_leave_grade, in_rph_treatment=p.in_rph_treatment)
    summary = coordinator.open_case(OpenCase(
        pilot=body.pilot, referrer=body.referrer, profile=profile, actor=actor,
        workflow_version=body.workflow_version, subject_id=body.subject_id,
        team=tuple(Actor(m.actor_id, m.role) for m in body.team)))
    response.headers["Location"] = f"/api/v1/cases/{summary.id}"
    response.headers["ETag"] = etag(summary.version)
    return CaseSummaryRead.of(summary)


def _actions(view: CaseView, actor: Actor) -> list[ActionRead]:
    # The page has content only for a member (team roles) or the person themself (bruker).
    rel = Relation.OWN if actor.role == BRUKER else Relation.MEMBER
    out = []
    for a in view.actions:
        permission = trigger_permission(a.trigger)
        permitted = decide(actor, permission, rel).allowed
        reasons = [*a.failed_guards, *([] if permitted else [f"not_permitted:{permission}"])]
        out.append(ActionRead(trigger=a.trigger, allowed=a.allowed and permitted,
                              targets=list(a.targets), reasons=reasons))
    return out


@router.get("/cases/{case_id}", response_model=CaseRead, responses=problems(404))
def get_case(case_id: CaseId, actor: CurrentActor, coordinator: CoordinatorDep,
             response: Response) -> CaseRead:
    """The case page: state, the next actions (and why each is not allowed now),
    deadlines, team, record and the newest consent records. The auditor gets metadata
    only. For a bruker this is their own plan view."""
    view = coordinator.view(case_id, actor=actor)
    try:
        consents = list(coordinator.consent_log(case_id, actor=actor))
    except PermissionDenied:
        consents = []
    newest = sorted(consents, key=lambda r: r.recorded_at, reverse=True)[:CONSENTS_ON_PAGE]
    response.headers["ETag"] = etag(view.summary.version)
    return CaseRead(
        case=CaseSummaryRead.of(view.summary), content=view.content,
        actions=_actions(view, actor) if view.content else [],
        deadlines=[DeadlineRead.of(d) for d in view.deadlines],
        team=[MemberRead.of(m) for m in view.team], record=dict(view.record),
        consents=[ConsentRead.of(r) for r in newest], consents_total=len(consents),
        withheld=list(view.withheld))


@router.get("/cases/{case_id}/history", response_model=HistoryPage, responses=problems(403, 404))
def case_history(case_id: CaseId, actor: CurrentActor, coordinator: CoordinatorDep,
                 request: Request,
                 after: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
                 limit: Limit = DEFAULT_LIMIT) -> HistoryPage:
    """The case's events in order, from ``after`` (a seq). Without content rights (the
    auditor) events carry no reason or arguments; neither do events holding a data
    category of the other side that no live consent lets the caller read (``withheld``)."""
    history = coordinator.history(case_id, actor=actor)
    events = [e for e in history if e.seq > after]
    page = events[:limit]
    more = len(events) > limit
    return HistoryPage(items=[EventRead.of(e) for e in page], withheld=list(history.withheld),
                       limit=limit,
                       next_cursor=page[-1].seq if more else None,
                       next=next_url(request, after=page[-1].seq) if more else None)


def _expected_version(body: TransitionWrite, if_match: str | None) -> int | None:
    header = None if if_match in (None, "*") else int(if_match.strip('"'))
    if header is not None and body.expected_version is not None \
            and header != body.expected_version:
        raise InvalidInput("If-Match and expected_version disagree", field="If-Match")
    return header if header is not None else body.expected_version


@router.post("/cases/{case_id}/transitions", response_model=CaseSummaryRead,
             responses=problems(403, 404, 409, 412, body=True))
def fire(case_id: CaseId, body: TransitionWrite, actor: CurrentActor,
         coordinator: CoordinatorDep, response: Response,
         if_match: Annotated[str | None, Header(alias="If-Match", pattern=IF_MATCH,
                                                description='The case version, e.g. "3"')]
         = None) -> CaseSummaryRead:
    """Fire a workflow trigger (``withdraw`` is the person's own choice; any other trigger
    advances the case). With ``If-Match`` or ``expected_version`` the change happens only
    if the case is still at that version (else 412); a concurrent change is a 409 to
    retry."""
    summary = coordinator.fire(FireTrigger(case_id, body.trigger, actor, dict(body.args),
                                           _expected_version(body, if_match)))
    response.headers["ETag"] = etag(summary.version)
    return CaseSummaryRead.of(summary)


@router.post("/cases/{case_id}/team", response_model=MemberRead,
             status_code=status.HTTP_201_CREATED, responses=problems(403, 404, 409, body=True))
def add_member(case_id: CaseId, body: TeamMemberWrite, actor: CurrentActor,
               coordinator: CoordinatorDep) -> MemberRead:
    """Put someone on the case's team in a team role (a transfer or a new helper)."""
    return MemberRead.of(coordinator.add_member(case_id, body.actor_id, body.role, by=actor))
