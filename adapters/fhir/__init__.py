"""FHIR R4B adapter: GP referrals in (``POST /fhir/Bundle``), measures out as Observations.

The only home of ``fhir.resources``. See docs/referrals.md.
"""
