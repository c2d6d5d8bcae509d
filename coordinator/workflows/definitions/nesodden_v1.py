"""Nesodden, Model 1: Nav + RPH — domain brief §5.4.

People with mild to moderate mental disorders **already in RPH treatment** who need
work-oriented follow-up from Nav; a job change as fast as possible when needed (004:433-439).
A jobbspesialist sits at RPH two fixed half-days (inference: a week) and joins the
therapists' weekly meeting (004:449-453). Intake is via the RPH therapists, who bring in the
jobbspesialist (004:481-487). With **written** consent to open a Nav dialogue the person is
invited to a joint conversation with RPH and Nav (004:487-491, 2167-2177). The jobbspesialist
and therapist coordinate; RPH contacts the GP if needed; user–employer–jobbspesialist
meetings (004:493-497); one meeting in total proved enough (004:1465-1471). Closing: an
avslutningssamtale with the jobbspesialist **or** the therapist (004:497-499); the patient is
kept open in the RPH journal until Nav is done too, so both record symptom burden and work
status at start and end (004:2153-2167). Not stated: intake deadline, follow-up length.
"""

from coordinator.workflows.definition import (
    Cadence,
    Effect,
    Eligibility,
    FollowUp,
    Guard,
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
    meeting,
    record_outcome,
)

PARTICIPANTS = ("bruker", "rph_behandler", "jobbspesialist")          # 004:489-491
SIDES = ("health", "nav")                                             # 004:2161-2167
MEASURES = ("symptom_burden", "work_status")                          # 004:2153-2161
# The closing conversation is held by the jobbspesialist or the therapist (004:497-499); the
# therapist may be recorded as the cognitive therapist or as the RPH practitioner.
CLOSERS = ("jobbspesialist", "kognitiv_terapeut", "rph_behandler")

DEFINITION = WorkflowDefinition(
    key="nesodden",
    version=1,
    title="Nesodden – Nav og RPH",
    model=1,                                                   # 004:140
    states=ALL_STATES,
    initial=S.REFERRED,
    final=FINAL,
    # Intake via the RPH therapists (004:481-487). The person contacted RPH themselves, but
    # into the pilot it is the therapist who brings them: so not a self-referral channel.
    referrers=("rph_intake",),
    eligibility=Eligibility(
        requires_rph_treatment=True,                           # 004:433-439
        target_groups=frozenset({"mental_mild_moderate"}),
    ),
    transitions=(
        begin_intake(),
        complete_intake(),
        # Written consent before the joint conversation (004:487-489). The form (signed) is
        # kept on the consent record; the gate checks its scope.
        confirm_consent(),
        hold_get_to_know(PARTICIPANTS),                        # 004:489-491
        agree_plan(),                                          # inference: a plan the person sees
        # Meetings of the person, the employer and the jobbspesialist (004:495-497).
        meeting("meet_employer", "employer_meeting", (S.FOLLOW_UP,),
                (Guard("attended", ("bruker", "arbeidsgiver", "jobbspesialist")),)),
        begin_closing(),
        # Health (RPH) and Nav each finish their track; the case stays open until both have
        # (004:2161-2167).
        T("finish_track", (S.FOLLOW_UP, S.CLOSING), None, effects=(Effect("finish_track"),)),
        close(
            (Guard("attended_any", CLOSERS),                   # 004:497-499
             Guard("tracks_finished", SIDES),                  # 004:2161-2167
             Guard("outcomes_recorded", ("start", "end"))),    # 004:2153-2161
            (Effect("record_meeting", ("closing_conversation",)),),
        ),
        record_outcome(),
        *exits(ACTIVE),
    ),
    cadences=(
        # The jobbspesialist's weekly meeting with the RPH therapists (004:449-453).
        Cadence("therapist_meeting", "weekly", ("jobbspesialist", "rph_behandler")),
        # Two fixed half-days at RPH; "per week" is our inference (004:449-453).
        Cadence("co_location", "twice_weekly", ("jobbspesialist", "rph_behandler")),
    ),
    get_to_know_participants=PARTICIPANTS,
    follow_up=FollowUp(employer_involvement="yes"),            # 004:495-497, 1974-1980
    outcomes=Outcomes(measures=MEASURES, required_to_close=True),
    closing_sides=SIDES,
    sources={
        "model": "004:140",
        "target": "004:433-439",
        "staffing": "004:449-453",
        "intake": "004:481-487",
        "consent": "004:487-489, 004:2167-2177",
        "joint_start": "004:489-491",
        "follow_up": "004:493-497",
        "one_meeting": "004:1465-1471",
        "closing": "004:497-499, 004:2161-2167",
        "measures": "004:2153-2161",
        "numbers": "004:510-516",
    },
)
