"""Building blocks shared by the pilot definitions. Plain data and small pure helpers.

The canonical journey is referred → intake (kartlegging) → consent → get_to_know (the joint
start, "bli kjent") → planning → follow_up → closing → closed. A pilot that takes consent on
the mapping form itself (Bjerke, Kristiansand) leaves out the ``consent`` state and guards
``complete_intake`` instead (domain brief §3: "the consent step moves").
"""

from __future__ import annotations

from coordinator.workflows.definition import Effect, Guard, State, T

S = State

ACTIVE = (S.REFERRED, S.INTAKE, S.CONSENT, S.GET_TO_KNOW, S.PLANNING, S.FOLLOW_UP, S.CLOSING)
EXITS = (S.DECLINED, S.WITHDRAWN, S.DROPPED_OUT)
ALL_STATES = (*ACTIVE, S.CLOSED, *EXITS)
FINAL = (S.CLOSED, *EXITS)
FINAL_WITH_REENTRY = EXITS          # Hå: closed cases may re-enter (004:727-739)

# Pilots that take consent during the RPH mapping have no separate consent state.
ACTIVE_NO_CONSENT = tuple(s for s in ACTIVE if s != S.CONSENT)
STATES_NO_CONSENT = (*ACTIVE_NO_CONSENT, S.CLOSED, *EXITS)

ELIGIBLE = Guard("eligible")
# Disclosure from health to Nav must rest on consent (003:2252-2256); the scope every pilot
# states is dialogue between the services (004:197, 320, 401, 489, 556-558).
CONSENT_FOR_NAV = Guard("consent_covers", ("coordination", "nav"))

# The mestringsplan is shown to the person and the services (004:994-996).
PLAN_AUDIENCE = ("bruker",)


def exits(states: tuple[str, ...] = ACTIVE) -> tuple[T, ...]:
    """Declined before starting, withdrawn by the person, or dropped out."""
    before_start = tuple(s for s in (S.REFERRED, S.INTAKE, S.CONSENT) if s in states)
    started = tuple(s for s in (S.GET_TO_KNOW, S.PLANNING, S.FOLLOW_UP, S.CLOSING)
                    if s in states)
    return (
        T("decline", before_start, S.DECLINED, (Guard("reason_given"),)),
        T("withdraw", tuple(states), S.WITHDRAWN),
        T("drop_out", started, S.DROPPED_OUT, (Guard("reason_given"),)),
    )


def record_outcome(states: tuple[str, ...] = ACTIVE) -> T:
    """Start and end measures may be recorded in any active state; the state stays."""
    return T("record_outcome", tuple(states), None, effects=(Effect("record_outcome"),))


def begin_intake() -> T:
    """Kartlegging starts once the person meets the pilot's (versioned) criteria."""
    return T("begin_intake", S.REFERRED, S.INTAKE, (ELIGIBLE,))


def complete_intake(dest: str = S.CONSENT, guards: tuple[Guard, ...] = ()) -> T:
    """The mapping is done; with ``guards=(CONSENT_FOR_NAV,)`` the form carries the consent."""
    return T("complete_intake", S.INTAKE, dest, guards)


def confirm_consent(guard: Guard = CONSENT_FOR_NAV) -> T:
    """The consent gate placed before the joint start."""
    return T("confirm_consent", S.CONSENT, S.GET_TO_KNOW, (guard,))


def hold_get_to_know(participants: tuple[str, ...], guards: tuple[Guard, ...] = ()) -> T:
    """The bli kjent-samtale is held with the pilot's required participants."""
    return T("hold_get_to_know", S.GET_TO_KNOW, S.PLANNING,
             (Guard("attended", participants), *guards),
             (Effect("record_meeting", ("get_to_know",)),))


def agree_plan(audience: tuple[str, ...] = PLAN_AUDIENCE,
               guards: tuple[Guard, ...] = ()) -> T:
    """The mestringsplan is agreed and visible to the person (004:994-996)."""
    return T("agree_plan", S.PLANNING, S.FOLLOW_UP,
             (Guard("plan_visible_to", audience), *guards), (Effect("record_plan"),))


def meeting(trigger: str, kind: str, states: tuple[str, ...],
            guards: tuple[Guard, ...] = ()) -> T:
    """A meeting recorded on the case without changing its state (internal transition)."""
    return T(trigger, tuple(states), None, guards, (Effect("record_meeting", (kind,)),))


def begin_closing() -> T:
    return T("begin_closing", S.FOLLOW_UP, S.CLOSING)


def close(guards: tuple[Guard, ...] = (), effects: tuple[Effect, ...] = ()) -> T:
    return T("close", S.CLOSING, S.CLOSED, guards, effects)
