"""Ringsaker ("Arbeidspuls"), Model 2, version 2 — domain brief §5.9.

Version 1 left two things open that the pilot itself lists as unresolved: the mapping form
"må legges inn i HelseNorge" and tools "for å måle resultater" (004:1023-1027). Version 2
closes both:

* the GP's HelseNorge mapping form must be back before the bli kjent-samtale, as the seed
  says it "skal være ferdig utfylt til samtalen" (004:982-990): ``receive_mapping_form``
  records it, and ``hold_get_to_know`` is guarded by that milestone;
* start and end measures are taken, the same two that RPH Nesodden has used since 2015
  (symptom burden and work status, 004:2153-2161) so that results are comparable across
  pilots and services — differing measures are named as a barrier (004:2578; 001:317-318).
  The start measure is taken before the plan is agreed and both are needed to close.

Everything else is as in version 1. Cases already in follow-up or closing cannot move:
their start measure was never taken, and one taken mid-course is not a start measure.
"""

from coordinator.workflows.definition import (
    Cadence,
    Deadline,
    Eligibility,
    FollowUp,
    Guard,
    Migration,
    Outcomes,
    T,
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
MEASURES = ("symptom_burden", "work_status")                                # 004:2153-2161

_NO_START_MEASURE = ("follow-up began under version 1 without a start measure; version 2 "
                     "needs start and end measures to close, and a start score cannot be "
                     "taken afterwards (004:1023-1027, 004:2153-2161). The case finishes on "
                     "version 1.")

DEFINITION = WorkflowDefinition(
    key="ringsaker",
    version=2,
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
        complete_intake(),
        # The HelseNorge form may come back any time before the start meeting (004:982-990).
        T("receive_mapping_form", (S.INTAKE, S.CONSENT, S.GET_TO_KNOW), None),
        confirm_consent(),                                     # 003:2252-2256; 004:1029-1031
        hold_get_to_know(PARTICIPANTS,                         # 004:976-982
                         (Guard("milestone", ("receive_mapping_form",)),)),   # 004:982-990
        agree_plan(guards=(Guard("outcomes_recorded", ("start",)),)),        # 004:994-996
        begin_closing(),
        close((Guard("outcomes_recorded", ("start", "end")),)),                # 004:2153-2161
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
    outcomes=Outcomes(measures=MEASURES, required_to_close=True),         # 004:1023-1027
    migrates_from=Migration(
        from_version=1,
        states={
            S.REFERRED: S.REFERRED,
            S.INTAKE: S.INTAKE,
            S.CONSENT: S.CONSENT,
            S.GET_TO_KNOW: S.GET_TO_KNOW,      # the form can still be received before it
            S.PLANNING: S.PLANNING,            # the start measure can still be taken
            S.FOLLOW_UP: None,
            S.CLOSING: None,
        },
        reasons={S.FOLLOW_UP: _NO_START_MEASURE, S.CLOSING: _NO_START_MEASURE},
    ),
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
        "measures": "004:2153-2161, 004:2578, 001:317-318",
        "consent_basis": "003:2252-2256",
    },
)
