"""Ringsaker ("Arbeidspuls"), Model 2 — domain brief §5.9.

GPs alone recruit (004:968-976, 1377-1379); the GP sends a mapping form through HelseNorge
that is completed before the start meeting (004:982-990); the GP convenes the person, the
Nav-veileder and the therapist (004:976-982); a joint mestringsplan visible to the person
and services (004:994-996); follow-up up to 12 weeks (004:996-1000). The brief records no
consent step for Ringsaker ("privacy must be clarified", 004:1029-1031); we still gate the
joint meeting on consent, since disclosure from health to Nav must rest on consent
(003:2252-2256). Version 2 (``ringsaker_v2``) adds the HelseNorge form and outcome
measures, both still open here (004:1023-1027).
"""

from coordinator.workflows.definition import (
    Cadence,
    Deadline,
    Eligibility,
    FollowUp,
    Outcomes,
    WorkflowDefinition,
)
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
    record_outcome,
)

PARTICIPANTS = ("bruker", "fastlege", "nav_veileder", "kognitiv_terapeut")   # 004:976-982

DEFINITION = WorkflowDefinition(
    key="ringsaker",
    version=1,
    title="Ringsaker – Arbeidspuls",
    model=2,                                                   # 004:647-649
    states=ALL_STATES,
    initial=S.REFERRED,
    final=FINAL,
    referrers=("fastlege",),                                   # 004:968-976, 1377-1379
    eligibility=Eligibility(
        min_age=18, max_age=55,                                # 004:948-958
        max_sick_leave_weeks=8,                                # at risk of or 0-8 weeks
        target_groups=frozenset({"mental_mild_moderate", "msk"}),
    ),
    transitions=(
        begin_intake(),                                        # GP judges the fit, 004:968-976
        complete_intake(),                                     # HelseNorge form, 004:982-990
        confirm_consent(),                                     # 003:2252-2256; 004:1029-1031
        hold_get_to_know(PARTICIPANTS),                        # 004:976-982
        agree_plan(),                                          # 004:994-996
        begin_closing(),
        close(),                                               # no closing rule stated
        record_outcome(),
        *exits(ACTIVE),
    ),
    deadlines=(
        # Follow-up lasts up to 12 weeks from the joint plan (004:996-1000).
        Deadline("follow_up_ends", anchor="trigger:agree_plan", met_by="begin_closing", weeks=12),
    ),
    cadences=(
        # Therapist and Nav-veileder at the GP office twice a week (004:1003-1005).
        Cadence("co_location", "twice_weekly", ("nav_veileder", "kognitiv_terapeut")),
    ),
    get_to_know_participants=PARTICIPANTS,
    follow_up=FollowUp(max_weeks=12, employer_involvement="as_needed"),   # 004:996-1002
    outcomes=Outcomes(),                    # result measures still open (004:1023-1027)
    sources={
        "target": "004:948-958",
        "recruitment": "004:968-976, 004:1377-1379",
        "pre_meeting_form": "004:982-990",
        "start_meeting": "004:976-982",
        "plan": "004:994-996",
        "length": "004:996-1000",
        "employer": "004:1000-1002, 004:1015-1019",
        "cadence": "004:1003-1005",
        "open_issues": "004:1023-1033",
        "consent_basis": "003:2252-2256",
    },
)
