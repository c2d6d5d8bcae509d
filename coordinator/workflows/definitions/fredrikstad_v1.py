"""Fredrikstad, Model 1: Nav + RPH — domain brief §5.2.

Under 30 with mild to moderate mental disorders, musculoskeletal problems, sleep problems or
beginning substance problems (004:266-274). RPH's intake team screens new users for a Nav
need and Nav's Syfo-veiledere screen for an RPH need (004:308-314), so both RPH and Nav
refer (004:1915-1919). A consent form for dialogue between the services is to be drafted
(004:318-320): the gate sits before the joint start. Syfo-veiledere meet RPH at fixed,
"rutinemessige og obligatoriske" meetings on fixed dates, per-user frequency following need
(004:280-286, 1444-1446), where shared users are identified and **anonymised** cases
discussed (004:286-288) — possible before any consent. One brobygger per service
(004:294-304). Not stated: intake deadline, joint start with the user, follow-up length,
employer role, closing rule, outcome measures. The researchers write that only Lillestrøm
includes substance problems (004:1891-1897); we follow the pilot's own text (004:272-274).
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

# Inference: the joint start is between the two services, the person's RPH therapist and the
# Nav-veileder bought out from Nav ung-teamet; the brief does not say the person attends.
PARTICIPANTS = ("rph_behandler", "nav_veileder")

DEFINITION = WorkflowDefinition(
    key="fredrikstad",
    version=1,
    title="Fredrikstad – Nav og RPH",
    model=1,                                                   # 004:140
    states=ALL_STATES,
    initial=S.REFERRED,
    final=FINAL,
    referrers=("rph_intake", "nav"),                           # 004:308-314, 1915-1919
    eligibility=Eligibility(
        max_age=29,                                            # "under 30 år", 004:266-270
        target_groups=frozenset({                              # 004:270-274
            "mental_mild_moderate", "msk", "sleep", "substance_early",
        }),
    ),
    transitions=(
        begin_intake(),
        # The fixed meetings discuss anonymised cases, so no consent is needed (004:286-288).
        meeting("discuss_anonymised", "anonymised_case_review",
                (S.REFERRED, S.INTAKE, S.CONSENT)),
        complete_intake(),
        confirm_consent(),                                     # consent form, 004:318-320
        hold_get_to_know(PARTICIPANTS),                        # inference, see above
        agree_plan(),                                          # inference: a plan the person sees
        begin_closing(),
        close(),                                               # no closing rule stated
        record_outcome(),
        *exits(ACTIVE),
    ),
    cadences=(
        # Routine, mandatory meetings on fixed dates (004:280-286, 1444-1446).
        Cadence("fixed_joint_meeting", "fixed",
                ("syfo_veileder", "rph_behandler", "brobygger")),
    ),
    get_to_know_participants=PARTICIPANTS,
    follow_up=FollowUp(employer_involvement="not_stated"),
    sources={
        "model": "004:140",
        "target": "004:266-274",
        "identification": "004:308-318, 004:1915-1919",
        "consent": "004:318-320",
        "cadence": "004:280-286, 004:1444-1446",
        "anonymised_cases": "004:286-288",
        "substance_conflict": "004:1891-1897",
        "brobygger": "004:294-304",
        "consent_basis": "003:2252-2256",
    },
)
