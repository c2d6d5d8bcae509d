"""Consent log and access log for one demo case of every pilot, through the facade, on
the fake, SQLite and PostgreSQL: each grant of the journey is in the consent log with its
form and digest, and the Nav veileder's consent-based read is in the person's access log
with who, role, when, purpose, category and the consent it rested on."""

from __future__ import annotations

from coordinator.cases.commands import OpenCase
from coordinator.consent import forms
from coordinator.demo import CHANNEL_ROLE, JOURNEYS, actor, drive, referral, subject, team
from coordinator.service import Coordinator
from coordinator.testing import FakeClock


def test_consent_and_access_logs_for_a_demo_case_of_every_pilot(
        any_coordinator: Coordinator, clock: FakeClock) -> None:
    c = any_coordinator
    for pilot, journey in JOURNEYS.items():
        channel, profile = referral(pilot, clock.now().date())
        opened = c.open_case(OpenCase(pilot, channel, profile,
                                      actor(pilot, CHANNEL_ROLE[channel]),
                                      subject_id=subject(pilot), team=team(pilot)))
        drive(c, opened.id, pilot, journey,
              advance=lambda days: clock.advance(days=days))
        person = actor(pilot, "bruker")
        grants = [s for s in journey if s.consent is not None]
        log = c.consent_log(opened.id, actor=person)
        assert len(log) == len(grants) >= 1, pilot
        for record, step in zip(log, grants, strict=True):
            assert step.consent is not None
            form = forms.form(pilot, step.consent.form_version)
            assert form is not None
            assert (record.kind, record.pilot, record.purposes, record.categories,
                    record.parties, record.method, record.form_digest, record.recorded_by) == (
                "grant", pilot, step.consent.purposes, step.consent.categories,
                step.consent.parties, step.consent.method, form.digest,
                actor(pilot, step.role).id), pilot
        reads = [e for e in c.access_log(opened.id, actor=person) if e.action == "read"]
        nav = actor(pilot, "nav_veileder")
        assert [(e.actor_id, e.actor_role, e.purpose, e.category, e.consent_id, e.basis)
                for e in reads] == [(nav.id, nav.role, "coordination", "kartlegging",
                                     log[0].id, "consent")], pilot
        assert reads[0].at == log[0].recorded_at          # read right after the grant
        viewed = c.access_log(opened.id, actor=actor(pilot, "auditor"))
        assert viewed[:len(reads)] == reads
        assert c.pilot_consent_log(pilot)[-1] == log[-1]
    assert c.verify_audit().ok
