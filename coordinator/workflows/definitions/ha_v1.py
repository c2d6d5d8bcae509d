"""Hå ("Arbeidsløftet"), Model 2: Nav + cognitive therapist + GP — domain brief §5.6.

The grant's target group with a focus on pending and partial sick notes (004:667-671). The
therapist and the Nav-veileder ("arbeidsveileder") sit at three GP offices at fixed weekly
times (004:681-683). GPs refer (004:685, 1921-1923; a GP journal code is proposed,
004:2143-2147) and people may register interest themselves through a QR flyer (004:739-744).
Mapping **within one week** of the GP's referral (004:685-687); a **weekly** intake meeting
gives an early overview and assigns responsibilities and roles (004:687-693); Nav and the
therapist update the GP **monthly** (004:693-697). The course "Tilbake til jobb"; another
therapist may take over, as people may know the therapist (004:697-705). The Nav-veileder
offers to join GP appointments, at the person's choice (004:709-719, 2094-2096). After a
relapse the person may contact the Nav-veileder or therapist directly "uten å måtte
gjennomgå en ny inntaksvurdering" (004:727-739): a closed case is not final and may re-enter
follow-up. Not stated: consent form, joint start with the person, length, closing rule,
outcome measures.
"""

from coordinator.workflows.definition import (
    Cadence,
    Deadline,
    Effect,
    Eligibility,
    FollowUp,
    Guard,
    T,
    WorkflowDefinition,
)
from coordinator.workflows.definitions._common import (
    ACTIVE,
    ALL_STATES,
    FINAL_WITH_REENTRY,
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

# Inference: Hå's joint start is the weekly intake meeting between the services, which
# assigns responsibilities and roles (004:687-693); the person's attendance is not stated.
PARTICIPANTS = ("nav_veileder", "kognitiv_terapeut")
SERVICES = ("nav_veileder", "kognitiv_terapeut")

DEFINITION = WorkflowDefinition(
    key="ha",
    version=1,
    title="Hå – Arbeidsløftet",
    model=2,                                                   # 004:647-649
    states=ALL_STATES,
    initial=S.REFERRED,
    final=FINAL_WITH_REENTRY,                                  # closed may re-enter, 004:727-739
    referrers=("fastlege", "self_referral"),                   # 004:685; QR flyer 004:739-744
    eligibility=Eligibility(
        # The grant's target group (004:53-63, 667-669); pending and partial sick notes are
        # a focus, not a criterion (004:669-671).
        target_groups=frozenset({"mental_mild_moderate", "msk"}),
    ),
    transitions=(
        begin_intake(),
        complete_intake(),                                     # kartlegging, 004:685-687
        # No consent form is described; disclosure to Nav needs consent (003:2252-2256).
        confirm_consent(),
        hold_get_to_know(PARTICIPANTS),                        # intake meeting, 004:687-693
        agree_plan(),                                          # responsibilities, 004:687-693
        # The monthly update of the GP by Nav and the therapist (004:693-697).
        meeting("update_gp", "gp_update", (S.FOLLOW_UP,)),
        # The Nav-veileder joins a GP appointment when the person wants it (004:709-719).
        meeting("join_gp_appointment", "gp_appointment", (S.FOLLOW_UP,),
                (Guard("attended", ("bruker", "nav_veileder", "fastlege")),)),
        # Another therapist may take over, e.g. when the person knows the first (004:701-705).
        T("change_therapist", (S.PLANNING, S.FOLLOW_UP), None, (Guard("reason_given"),)),
        begin_closing(),
        close(),                                               # no closing rule stated
        # Re-entry after relapse without a new intake assessment (004:727-739).
        T("reenter", S.CLOSED, S.FOLLOW_UP, (Guard("had_follow_up"),), (Effect("reopen"),)),
        record_outcome(),
        *exits(ACTIVE),
    ),
    deadlines=(
        # "Innen en uke etter mottatt henvisning fra fastlege" (004:685-687): five workdays.
        Deadline("kartlegging", anchor="referred", met_by="complete_intake", workdays=5),
    ),
    cadences=(
        # Therapist and Nav-veileder at the three GP offices at fixed weekly times (004:681-683).
        Cadence("gp_office_presence", "weekly", SERVICES),
        # Weekly intake meeting between the services (004:687-693).
        Cadence("intake_meeting", "weekly", SERVICES),
        # Monthly update of the GP about each person (004:693-697).
        Cadence("gp_update", "monthly", (*SERVICES, "fastlege"), per_case=True),
    ),
    get_to_know_participants=PARTICIPANTS,
    follow_up=FollowUp(employer_involvement="planned"),        # considered, 004:719-723
    sources={
        "model": "004:647-649",
        "target": "004:667-671, 004:53-63",
        "staffing": "004:681-683",
        "referral": "004:685, 004:1921-1923, 004:2143-2147",
        "self_registration": "004:739-744",
        "deadline": "004:685-687",
        "intake_meeting": "004:687-693",
        "gp_updates": "004:693-697",
        "follow_up": "004:697-705",
        "user_choice": "004:709-719, 004:2094-2096",
        "employer": "004:719-723",
        "reentry": "004:727-739",
        "consent_basis": "003:2252-2256",
    },
)
