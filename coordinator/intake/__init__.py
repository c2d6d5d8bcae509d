"""Referral intake, kartlegging, outcome measures and therapist session logs (pure use cases).

The FHIR adapter (``adapters/fhir``) turns a GP's Bundle into a ``Referral``; the use cases
here open the case with its idempotency record, forms and start measures in one unit of work.
"""
