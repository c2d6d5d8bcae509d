"""Stovner (Oslo, "Bedre sammen"), Model 2: Nav + cognitive therapist + GP — domain brief §5.8.

People **over 18**, working or on sick leave, wanting to return to work, with mild to
moderate mental and/or musculoskeletal problems (004:861-869); AAP recipients with an
employer may join if GPs refer enough (004:873-877). Effects must be traceable to mental vs
musculoskeletal problems (004:871-873): the problem groups are kept on the profile. GPs
identify and refer via e-link (004:889-891, 1921-1923). If the patient wants to take part,
the GP, the therapist and Nav discuss the case together (004:893-895) — the patient's
presence is not required. **Weekly** Nav–RPH–GP meetings plus **monthly** meetings between
the services (004:885-887, 895); Nav partly co-located (004:881-883). **6–12 hours** of RPH
follow-up per patient (004:897). Not stated: consent form, employer role, closing rule.
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
    record_outcome,
)

# GP, therapist and Nav discuss the case; the patient only if they want to (004:893-895).
PARTICIPANTS = ("fastlege", "kognitiv_terapeut", "nav_veileder")

DEFINITION = WorkflowDefinition(
    key="stovner",
    version=1,
    title="Stovner (Oslo) – Bedre sammen",
    model=2,                                                   # 004:647-649
    states=ALL_STATES,
    initial=S.REFERRED,
    final=FINAL,
    referrers=("fastlege",),                                   # e-link, 004:889-891
    eligibility=Eligibility(
        # "over 18 år" (004:861): we read it as adults, 18 and older, not "19 and older":
        # the pilot targets working adults and the researchers list the rule as "over 18"
        # beside Ringsaker's 18-55 (004:1901-1903). Change to 19 if the pilot means it
        # strictly; eligibility is versioned per pilot.
        min_age=18,
        requires_employment=True,                              # in work or sick leave, 004:861-863
        target_groups=frozenset({"mental_mild_moderate", "msk"}),   # 004:861-869
    ),
    transitions=(
        begin_intake(),
        complete_intake(),
        # "Dersom pasienten ønsker å ta del i piloten" (004:893-895): the patient's yes, with
        # consent to the services' discussion (003:2252-2256), comes before it.
        confirm_consent(),
        hold_get_to_know(PARTICIPANTS),                        # 004:893-895
        agree_plan(),                                          # inference: a plan the person sees
        begin_closing(),
        close(),                                               # no closing rule stated
        record_outcome(),
        *exits(ACTIVE),
    ),
    cadences=(
        # Regular weekly meetings of Nav, RPH and the GP coordinating follow-up (004:885-887).
        Cadence("weekly_coordination", "weekly",
                ("nav_veileder", "kognitiv_terapeut", "fastlege")),
        # Monthly meetings between the services (004:895).
        Cadence("monthly_service_meeting", "monthly",
                ("nav_veileder", "kognitiv_terapeut", "fastlege")),
    ),
    get_to_know_participants=PARTICIPANTS,
    follow_up=FollowUp(therapy_hours=(6, 12), employer_involvement="not_stated"),   # 004:897
    sources={
        "model": "004:647-649",
        "target": "004:861-869",
        "aap": "004:873-877",
        "reporting": "004:871-873",
        "referral": "004:889-891, 004:1921-1923",
        "joint_start": "004:893-895",
        "cadence": "004:885-887, 004:895",
        "co_location": "004:881-883",
        "dose": "004:897",
        "age_conflict": "004:1901-1903",
        "consent_basis": "003:2252-2256",
    },
)
