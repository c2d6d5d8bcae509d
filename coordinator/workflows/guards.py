"""Guards and effects shared by every pilot, and validation of trigger arguments. Pure.

A guard is ``(facts, args) -> None`` when it passes or a reason code when it fails.
An effect is ``(record, facts, args) -> record`` and runs only after every guard passed.
Definitions refer to both by name; ``registry`` refuses unknown names on load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from coordinator.errors import InvalidInput
from coordinator.workflows import eligibility
from coordinator.workflows.definition import ROLES, SIDES
from coordinator.workflows.facts import CaseRecord, Facts, Meeting

GuardFn = Callable[[Facts, tuple[str, ...]], str | None]
EffectFn = Callable[[CaseRecord, Facts, tuple[str, ...]], CaseRecord]


def _eligible(facts: Facts, args: tuple[str, ...]) -> str | None:
    reasons = eligibility.failures(facts.definition.eligibility, facts.profile, facts.now.date())
    return f"not_eligible:{'+'.join(reasons)}" if reasons else None


def _consent_covers(facts: Facts, args: tuple[str, ...]) -> str | None:
    purpose, *parties = args
    missing = [p for p in parties if (purpose, p) not in facts.consents]
    return f"no_consent:{purpose}:{'+'.join(missing)}" if missing else None


def _attended(facts: Facts, args: tuple[str, ...]) -> str | None:
    present = set(facts.args.get("attendees", ()))
    missing = [role for role in args if role not in present]
    return f"missing_participants:{'+'.join(missing)}" if missing else None


def _attended_any(facts: Facts, args: tuple[str, ...]) -> str | None:
    present = set(facts.args.get("attendees", ()))
    return None if present & set(args) else f"needs_one_of:{'+'.join(args)}"


def _milestone(facts: Facts, args: tuple[str, ...]) -> str | None:
    missing = [t for t in args if t not in facts.record.milestones]
    return f"not_done:{'+'.join(missing)}" if missing else None


def _plan_visible_to(facts: Facts, args: tuple[str, ...]) -> str | None:
    visible = set(facts.args.get("visible_to", ()))
    missing = [role for role in args if role not in visible]
    return f"plan_not_visible_to:{'+'.join(missing)}" if missing else None


def _outcomes_recorded(facts: Facts, args: tuple[str, ...]) -> str | None:
    missing = [phase for phase in args if phase not in facts.record.outcomes]
    return f"outcomes_missing:{'+'.join(missing)}" if missing else None


def _tracks_finished(facts: Facts, args: tuple[str, ...]) -> str | None:
    missing = [side for side in args if side not in facts.record.tracks_finished]
    return f"tracks_open:{'+'.join(missing)}" if missing else None


def _had_follow_up(facts: Facts, args: tuple[str, ...]) -> str | None:
    return None if "agree_plan" in facts.record.milestones else "never_followed_up"


def _reason_given(facts: Facts, args: tuple[str, ...]) -> str | None:
    return None if facts.args.get("reason") else "reason_required"


GUARDS: Mapping[str, GuardFn] = {
    "eligible": _eligible,
    "consent_covers": _consent_covers,          # (purpose, party, ...)
    "attended": _attended,                      # every listed role attended
    "attended_any": _attended_any,              # at least one listed role attended
    "milestone": _milestone,                    # these triggers have fired before
    "plan_visible_to": _plan_visible_to,
    "outcomes_recorded": _outcomes_recorded,    # (start, end)
    "tracks_finished": _tracks_finished,        # (health, nav)
    "had_follow_up": _had_follow_up,
    "reason_given": _reason_given,
}

# Minimum number of fixed arguments each guard needs.
GUARD_MIN_ARGS: Mapping[str, int] = {
    "consent_covers": 2, "attended": 1, "attended_any": 1, "milestone": 1,
    "plan_visible_to": 1, "outcomes_recorded": 1, "tracks_finished": 1,
}


def _record_meeting(record: CaseRecord, facts: Facts, args: tuple[str, ...]) -> CaseRecord:
    meeting = Meeting(args[0], facts.now, tuple(sorted(set(facts.args.get("attendees", ())))))
    return replace(record, meetings=(*record.meetings, meeting))


def _record_plan(record: CaseRecord, facts: Facts, args: tuple[str, ...]) -> CaseRecord:
    return replace(record, plan_visible_to=tuple(sorted(set(facts.args.get("visible_to", ())))))


def _record_outcome(record: CaseRecord, facts: Facts, args: tuple[str, ...]) -> CaseRecord:
    return replace(record, outcomes=record.outcomes | {str(facts.args["phase"])})


def _finish_track(record: CaseRecord, facts: Facts, args: tuple[str, ...]) -> CaseRecord:
    return replace(record, tracks_finished=record.tracks_finished | {str(facts.args["side"])})


# Milestones that belong to one episode and are cleared on re-entry.
_EPISODE_MILESTONES = ("begin_closing", "close", "drop_out")


def _reopen(record: CaseRecord, facts: Facts, args: tuple[str, ...]) -> CaseRecord:
    milestones = {k: v for k, v in record.milestones.items() if k not in _EPISODE_MILESTONES}
    return replace(record, episode=record.episode + 1, milestones=milestones,
                   outcomes=frozenset(), tracks_finished=frozenset())


EFFECTS: Mapping[str, EffectFn] = {
    "record_meeting": _record_meeting,    # (meeting kind,)
    "record_plan": _record_plan,
    "record_outcome": _record_outcome,
    "finish_track": _finish_track,
    "reopen": _reopen,
}

EFFECT_MIN_ARGS: Mapping[str, int] = {"record_meeting": 1}

# Which trigger arguments each guard or effect reads. A transition accepts exactly these.
READS: Mapping[str, tuple[str, ...]] = {
    "attended": ("attendees",), "attended_any": ("attendees",),
    "plan_visible_to": ("visible_to",), "record_meeting": ("attendees",),
    "record_plan": ("visible_to",), "record_outcome": ("phase",), "finish_track": ("side",),
}
REQUIRED_ARGS: Mapping[str, tuple[str, ...]] = {"record_outcome": ("phase",),
                                                 "finish_track": ("side",)}


def _roles(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInput("must be a list of roles")
    unknown = sorted(set(value) - ROLES)
    if unknown:
        raise InvalidInput(f"unknown roles: {', '.join(unknown)}")
    return tuple(value)


def _one_of(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise InvalidInput(f"must be one of {', '.join(allowed)}")
        return str(value)
    return check


def _reason(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise InvalidInput("must be a non-empty text of at most 500 characters")
    return value.strip()


ARG_VALIDATORS: Mapping[str, Callable[[Any], Any]] = {
    "attendees": _roles,
    "visible_to": _roles,
    "phase": _one_of("start", "end"),
    "side": _one_of(*sorted(SIDES)),
    "reason": _reason,
}


def validate_args(trigger: str, accepted: frozenset[str], required: frozenset[str],
                  args: Mapping[str, Any]) -> dict[str, Any]:
    """Check trigger arguments; raise ``InvalidInput`` naming the first bad one."""
    unknown = sorted(set(args) - accepted - {"reason"})
    if unknown:
        raise InvalidInput(f"action {trigger!r} takes no argument {unknown[0]!r}",
                           argument=unknown[0])
    missing = sorted(required - set(args))
    if missing:
        raise InvalidInput(f"action {trigger!r} needs argument {missing[0]!r}",
                           argument=missing[0])
    clean: dict[str, Any] = {}
    for name, value in args.items():
        try:
            clean[name] = ARG_VALIDATORS[name](value)
        except InvalidInput as exc:
            raise InvalidInput(f"argument {name!r} of {trigger!r} {exc.message}",
                               argument=name) from None
    return clean

