"""Eligibility check: which of a pilot's intake rules a person fails on a given day."""

from __future__ import annotations

from datetime import date

from coordinator.workflows.definition import Eligibility
from coordinator.workflows.facts import Profile


def failures(rule: Eligibility, profile: Profile, day: date) -> list[str]:
    """Reason codes for every rule the person fails; empty when eligible."""
    reasons: list[str] = []
    age = profile.age_on(day)
    if rule.min_age is not None and age < rule.min_age:
        reasons.append(f"age_below_{rule.min_age}")
    if rule.max_age is not None and age > rule.max_age:
        reasons.append(f"age_above_{rule.max_age}")
    weeks = profile.sick_leave_weeks_on(day)
    if rule.max_sick_leave_weeks is not None and weeks is not None \
            and weeks > rule.max_sick_leave_weeks:
        reasons.append(f"sick_leave_over_{rule.max_sick_leave_weeks}_weeks")
    if not profile.problems & rule.target_groups:
        reasons.append("outside_target_group")
    if rule.requires_employment and not profile.employed:
        reasons.append("not_employed")
    if rule.requires_rph_treatment and not profile.in_rph_treatment:
        reasons.append("not_in_rph_treatment")
    return reasons
