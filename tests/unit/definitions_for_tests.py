"""Small synthetic workflow definitions for the engine, registry and persistence tests.

They do not describe any pilot: they exist so core tests do not depend on the pilot files,
which change as the pilots are modelled. ``SYNTHETIC`` uses every guard kind that matters
to the engine: eligibility, consent, attendance, alternatives (``decide``), internal
transitions (``record_outcome``, ``finish_track``), milestones and recorded outcomes.

    referred --begin_intake[eligible]--> intake
    intake   --decide[attended(bruker)]--> consent          (first alternative)
    intake   --decide[reason_given]-----> declined         (second alternative)
    consent  --confirm_consent[consent_covers(coordination, nav)]--> planning
    planning --agree_plan[plan_visible_to(bruker)]--> follow_up
    follow_up --begin_closing[tracks_finished(health, nav), outcomes_recorded(start)]--> closing
    closing  --close[outcomes_recorded(end), milestone(agree_plan)]--> closed
    record_outcome (intake..closing, stays), finish_track (follow_up, stays)
    withdraw (every active state) --> withdrawn
"""

from __future__ import annotations

from datetime import date

from coordinator.workflows.definition import (
    Deadline,
    Effect,
    Eligibility,
    Guard,
    State,
    T,
    WorkflowDefinition,
)
from coordinator.workflows.facts import Profile
from coordinator.workflows.registry import WorkflowRegistry

S = State
KEY = "synthetic"
SOURCE = "synthetic_v1"      # the file name the registry expects for this key and version

ACTIVE = (S.REFERRED, S.INTAKE, S.CONSENT, S.PLANNING, S.FOLLOW_UP, S.CLOSING)
FINAL = (S.CLOSED, S.DECLINED, S.WITHDRAWN)

SYNTHETIC = WorkflowDefinition(
    key=KEY,
    version=1,
    title="Synthetic test workflow",
    model=1,
    states=(*ACTIVE, *FINAL),
    initial=S.REFERRED,
    final=FINAL,
    referrers=("fastlege", "nav"),
    eligibility=Eligibility(min_age=18, max_age=67,
                            target_groups=frozenset({"msk", "mental_mild_moderate"})),
    transitions=(
        T("begin_intake", S.REFERRED, S.INTAKE, (Guard("eligible"),)),
        T("decide", S.INTAKE, S.CONSENT, (Guard("attended", ("bruker",)),),
          (Effect("record_meeting", ("intake",)),)),
        T("decide", S.INTAKE, S.DECLINED, (Guard("reason_given"),)),
        T("confirm_consent", S.CONSENT, S.PLANNING,
          (Guard("consent_covers", ("coordination", "nav")),)),
        T("agree_plan", S.PLANNING, S.FOLLOW_UP, (Guard("plan_visible_to", ("bruker",)),),
          (Effect("record_plan"),)),
        T("record_outcome", (S.INTAKE, S.CONSENT, S.PLANNING, S.FOLLOW_UP, S.CLOSING), None,
          effects=(Effect("record_outcome"),)),
        T("finish_track", S.FOLLOW_UP, None, effects=(Effect("finish_track"),)),
        T("begin_closing", S.FOLLOW_UP, S.CLOSING,
          (Guard("tracks_finished", ("health", "nav")), Guard("outcomes_recorded", ("start",)))),
        T("close", S.CLOSING, S.CLOSED,
          (Guard("outcomes_recorded", ("end",)), Guard("milestone", ("agree_plan",)))),
        T("withdraw", ACTIVE, S.WITHDRAWN),
    ),
    deadlines=(
        Deadline("intake_decided", anchor="referred", met_by="decide", workdays=5),
        Deadline("plan_agreed", anchor="trigger:confirm_consent", met_by="agree_plan", weeks=2),
        Deadline("closing_begun", anchor="sick_leave_start", met_by="begin_closing", weeks=8),
    ),
    sources={"synthetic": "000:1-2"},
)

# A person the synthetic workflow (and ringsaker_v1) accepts on the test clock's dates.
ELIGIBLE = Profile(birth_date=date(1990, 5, 1), problems=frozenset({"msk"}))
# Too young on any date before 2030 for both.
TOO_YOUNG = Profile(birth_date=date(2012, 5, 1), problems=frozenset({"msk"}))


def synthetic_registry() -> WorkflowRegistry:
    return WorkflowRegistry([(SOURCE, SYNTHETIC)])
