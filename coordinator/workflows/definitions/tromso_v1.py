"""Tromsø, Model 1: Nav + RPH — domain brief §5.5.

People **under 30** referred to RPH by a GP or by Nav (004:522-524); RPH recruits and Nav
has a role too (004:1915-1919). The Nav-veileder sits at RPH 2–3 days a week and joins
**weekly** meetings (004:536-540). Once a person is identified, an early Nav–RPH dialogue,
possibly with the employer and/or the GP, settles roles and further services, and this
**requires consent** (004:552-558); RPH owns the dialogue with GPs (004:554-556). A shared
job-focused conversation tool for the services and the employer, and a GP tool asking first
whether the patient has talked to the employer (004:560-568). GPs are offered **half-yearly**
project meetings with Nav and RPH (004:568-572). A technical sharing solution is still
missing (004:546-548). Not stated: follow-up length, closing rule, outcome measures.
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

# The early dialogue is between Nav and RPH (004:552-556); employer and GP join only
# "eventuelt", so they are not required. Inference: the person is not required either.
PARTICIPANTS = ("rph_behandler", "nav_veileder")

DEFINITION = WorkflowDefinition(
    key="tromso",
    version=1,
    title="Tromsø – Nav og RPH",
    model=1,                                                   # 004:140
    states=ALL_STATES,
    initial=S.REFERRED,
    final=FINAL,
    # Referred to RPH by a GP or by Nav (004:522-524): a GP's referral reaches the pilot
    # through RPH's intake, Nav's directly (004:1915-1919).
    referrers=("rph_intake", "nav"),
    eligibility=Eligibility(
        max_age=29,                                            # "under 30 år", 004:522-524
        target_groups=frozenset({"mental_mild_moderate"}),     # RPH's group, 004:110-112
    ),
    transitions=(
        begin_intake(),
        complete_intake(),
        confirm_consent(),                                     # "krever samtykke", 004:552-558
        hold_get_to_know(PARTICIPANTS),                        # early dialogue, 004:552-556
        agree_plan(),                                          # inference: a plan the person sees
        begin_closing(),
        close(),                                               # no closing rule stated
        record_outcome(),
        *exits(ACTIVE),
    ),
    cadences=(
        # Fixed weekly meetings of the Nav-veileder with RPH (004:536-540).
        Cadence("weekly_meeting", "weekly", ("nav_veileder", "rph_behandler")),
        # At RPH 2-3 days a week; "twice_weekly" is the nearest period (004:536-540).
        Cadence("co_location", "twice_weekly", ("nav_veileder", "rph_behandler")),
        # Half-yearly project meetings with the GPs (004:568-572).
        Cadence("gp_project_meeting", "half_yearly",
                ("fastlege", "nav_veileder", "rph_behandler")),
    ),
    get_to_know_participants=PARTICIPANTS,
    # A close cooperation with employers (004:1974-1976); the employer uses the tool (004:560-564).
    follow_up=FollowUp(employer_involvement="yes"),
    sources={
        "model": "004:140",
        "target": "004:522-524",
        "recruitment": "004:1915-1919",
        "staffing": "004:536-540",
        "gap": "004:546-548",
        "start": "004:552-558",
        "tools": "004:560-568",
        "cadence": "004:536-540, 004:568-572",
        "employer": "004:1974-1980",
    },
)
