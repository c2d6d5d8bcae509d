"""Lillestrøm, Model 2: Nav + cognitive therapist + GP — domain brief §5.7.

The least concrete pilot (004:781-785): no therapist recruited yet, so it runs as in the
earlier GP project for now (004:1923-1927). Patients with mild to moderate mental problems,
**substance problems** or musculoskeletal problems needing coordinated help from Nav and
municipal health services (004:799-805). A jobbspesialist is at the GP office **twice a
week** (004:809); mastery groups plus individual therapy are planned, home care and child
welfare are to be involved, and fixed meeting points between the services are planned
(004:813-821). Not stated: referral route, consent, joint start, length, employer role,
closing, outcome measures — every choice below on those is an inference.
"""

from coordinator.workflows.definition import Cadence, Eligibility, FollowUp, WorkflowDefinition
from coordinator.workflows.definitions._common import (
    ACTIVE,
    ALL_STATES,
    FINAL,
    S,
    agree_plan,
    begin_closing,
    begin_intake,
    close,
    complete_intake,
    confirm_consent,
    exits,
    hold_get_to_know,
    meeting,
    record_outcome,
)

# Inference: until a therapist is hired the joint start is the person and the jobbspesialist
# at the GP office, as in the GP project (004:809, 1923-1927).
PARTICIPANTS = ("bruker", "jobbspesialist")

DEFINITION = WorkflowDefinition(
    key="lillestrom",
    version=1,
    title="Lillestrøm – Nav, kognitiv terapeut og fastlege",
    model=2,                                                   # 004:647-649
    states=ALL_STATES,
    initial=S.REFERRED,
    final=FINAL,
    # Inference: the route is "uvisst" (004:1921-1927). The jobbspesialist sits at the GP
    # office (004:809) and the pilot builds on the GP project (004:781-785), so the GP refers.
    referrers=("fastlege",),
    eligibility=Eligibility(
        target_groups=frozenset({"mental_mild_moderate", "substance", "msk"}),   # 004:799-805
    ),
    transitions=(
        begin_intake(),
        complete_intake(),
        # Inference: no consent step is described; disclosure to Nav needs consent
        # (003:2252-2256).
        confirm_consent(),
        hold_get_to_know(PARTICIPANTS),                        # inference, see above
        agree_plan(),                                          # inference: a plan the person sees
        # Planned mastery groups (004:813-817).
        meeting("attend_mastery_group", "mastery_group", (S.FOLLOW_UP,)),
        begin_closing(),
        close(),                                               # no closing rule stated
        record_outcome(),
        *exits(ACTIVE),
    ),
    cadences=(
        # The jobbspesialist at the GP office twice a week (004:809).
        Cadence("gp_office_presence", "twice_weekly", ("jobbspesialist", "fastlege")),
        # Fixed meeting points between the services are planned (004:819-821).
        Cadence("service_meeting", "fixed", ("jobbspesialist", "fastlege", "kognitiv_terapeut")),
    ),
    get_to_know_participants=PARTICIPANTS,
    follow_up=FollowUp(employer_involvement="not_stated"),
    sources={
        "model": "004:647-649",
        "status": "004:781-785, 004:1923-1927",
        "target": "004:799-805",
        "staffing": "004:809",
        "follow_up": "004:813-821",
        "referral_unknown": "004:1921-1927",
        "consent_basis": "003:2252-2256",
    },
)
