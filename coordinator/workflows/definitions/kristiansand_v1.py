"""Kristiansand, Model 1: Nav + RPH — domain brief §5.3.

People who have a job and mild to moderate mental disorders, at risk of sick leave or early
in it, "under 12 uker" (004:359-363). 50 % Nav and 50 % RPH posts co-located two days a week
(004:367-373). RPH recruits (004:1915-1919); people searching for RPH online get the pilot's
Nav-veileder's and therapist's direct contacts (004:379-381), so they may also come in by
themselves. The consent form on information sharing is presented during the RPH mapping
(004:399-401): the consent gate sits on the intake step and there is no ``consent`` state.
Weekly appointments besides the co-location days (004:403-407); a course of six two-hour
meetings based on assisted self-help plus individual follow-up (004:407-413). Employer
involvement is planned (004:1974-1980; town halls and company contacts, 004:391-397). Not
stated: joint start, total follow-up length, closing rule, outcome measures.
"""

from coordinator.workflows.definition import Cadence, Eligibility, FollowUp, WorkflowDefinition
from coordinator.workflows.definitions._common import (
    ACTIVE_NO_CONSENT,
    CONSENT_FOR_NAV,
    FINAL,
    STATES_NO_CONSENT,
    S,
    agree_plan,
    begin_closing,
    begin_intake,
    close,
    complete_intake,
    exits,
    hold_get_to_know,
    meeting,
    record_outcome,
)

# Inference: the "skreddersydd og samtidig oppfølging av Nav og RPH" (004:401-403) starts with
# the person and the two co-located posts, the Nav-veileder and the cognitive therapist
# (004:367-373).
PARTICIPANTS = ("bruker", "nav_veileder", "kognitiv_terapeut")

DEFINITION = WorkflowDefinition(
    key="kristiansand",
    version=1,
    title="Kristiansand – Nav og RPH",
    model=1,                                                   # 004:140
    states=STATES_NO_CONSENT,                                  # consent is in the mapping
    initial=S.REFERRED,
    final=FINAL,
    # RPH recruits (004:1915-1919); online RPH seekers contact the pilot directly (004:379-381).
    referrers=("rph_intake", "self_referral"),
    eligibility=Eligibility(
        max_sick_leave_weeks=11,                               # "under 12 uker", 004:359-363
        requires_employment=True,                              # "har et arbeidsforhold"
        target_groups=frozenset({"mental_mild_moderate"}),     # 004:359-363
    ),
    transitions=(
        begin_intake(),
        # Consent to share information is given in the RPH mapping (004:399-401).
        complete_intake(S.GET_TO_KNOW, (CONSENT_FOR_NAV,)),
        hold_get_to_know(PARTICIPANTS),                        # inference, see above
        agree_plan(),                                          # inference: a plan the person sees
        # One of the six two-hour course meetings (004:407-413).
        meeting("attend_course", "course", (S.FOLLOW_UP,)),
        begin_closing(),
        close(),                                               # no closing rule stated
        record_outcome(ACTIVE_NO_CONSENT),
        *exits(ACTIVE_NO_CONSENT),
    ),
    cadences=(
        # Weekly appointments besides the co-location days (004:403-407); inference: per
        # person and with the person, as "avtaler" (appointments) suggests.
        Cadence("weekly_follow_up", "weekly", ("nav_veileder", "kognitiv_terapeut"),
                with_user=True, per_case=True),
        # The two posts sit together two days a week (004:367-373).
        Cadence("co_location", "twice_weekly", ("nav_veileder", "kognitiv_terapeut")),
    ),
    get_to_know_participants=PARTICIPANTS,
    follow_up=FollowUp(course_sessions=6, employer_involvement="planned"),  # 004:407-413
    sources={
        "model": "004:140",
        "target": "004:359-363",
        "staffing": "004:367-373",
        "identification": "004:379-381, 004:1915-1919",
        "consent": "004:399-401",
        "cadence": "004:403-407",
        "course": "004:407-413",
        "employer": "004:1974-1980, 004:391-397",
        "consent_basis": "003:2252-2256",
    },
)
