"""Bjerke (Oslo), Model 1: Nav + RPH — domain brief §5.1.

RPH's group: mild to moderate mental problems among residents at risk of leaving work
(004:167-187); RPH recruits (004:1915-1919). RPH's new mapping form asks about the job, any
contact with Nav and the Nav-veileder's name, and on the same form asks the person's consent
for RPH to open a dialogue with Nav (004:193-197) — so the consent gate sits on the intake
step itself and the definition has no separate ``consent`` state. The Nav-veileder sends an
information letter about RPH by week 8 of sick leave at the latest (004:199-201). One
brobygger spans both services (004:215-231); an annual information meeting and ongoing joint
follow-up meetings (004:239-241); an RPH course with a Nav psychologist and a Syfo-veileder
(004:205-213). Goals: work, work training or education (004:260-263). Not stated: the joint
start's participants, follow-up length, employer role, closing rule, outcome measures.
"""

from coordinator.workflows.definition import (
    Cadence,
    Deadline,
    Eligibility,
    FollowUp,
    T,
    WorkflowDefinition,
)
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

# Inference: the consent on the form opens an RPH–Nav dialogue (004:197), so the joint start
# is the person, their RPH therapist and the Nav-veileder; the brobygger advises (004:215-231).
PARTICIPANTS = ("bruker", "rph_behandler", "nav_veileder")

DEFINITION = WorkflowDefinition(
    key="bjerke",
    version=1,
    title="Bjerke (Oslo) – Nav og RPH",
    model=1,                                                   # 004:140
    states=STATES_NO_CONSENT,                                  # consent is on the form
    initial=S.REFERRED,
    final=FINAL,
    referrers=("rph_intake",),                                 # 004:1915-1919
    eligibility=Eligibility(
        target_groups=frozenset({"mental_mild_moderate"}),     # RPH's group, 004:167-187
    ),
    transitions=(
        begin_intake(),
        # The mapping form carries the consent for RPH to contact Nav (004:193-197).
        complete_intake(S.GET_TO_KNOW, (CONSENT_FOR_NAV,)),
        # Nav's information letter about RPH, by week 8 of sick leave (004:199-201).
        T("send_info_letter", ACTIVE_NO_CONSENT, None),
        hold_get_to_know(PARTICIPANTS),                        # inference, see above
        agree_plan(),                                          # inference: a plan the person sees
        # The RPH course on work and mental health (004:205-213).
        meeting("attend_course", "course", (S.FOLLOW_UP,)),
        begin_closing(),
        close(),                                               # no closing rule stated
        record_outcome(ACTIVE_NO_CONSENT),
        *exits(ACTIVE_NO_CONSENT),
    ),
    deadlines=(
        # "senest ved åtte ukers sykefravær" (004:199-201).
        Deadline("info_letter", anchor="sick_leave_start", met_by="send_info_letter", weeks=8),
    ),
    cadences=(
        # Annual information meeting about the services (004:239-241). The ongoing joint
        # follow-up meetings have no stated period, so no cadence is set for them.
        Cadence("information_meeting", "annual",
                ("brobygger", "nav_veileder", "rph_behandler", "syfo_veileder")),
    ),
    get_to_know_participants=PARTICIPANTS,
    follow_up=FollowUp(employer_involvement="not_stated"),     # length not stated
    sources={
        "model": "004:140",
        "target": "004:167-187",
        "recruitment": "004:1915-1919",
        "intake": "004:193-203",
        "consent": "004:197",
        "deadline": "004:199-201",
        "course": "004:205-213",
        "brobygger": "004:215-231",
        "cadence": "004:239-241",
        "self_help_app": "004:246-252",
        "goals": "004:260-263",
        "consent_basis": "003:2252-2256",
    },
)
