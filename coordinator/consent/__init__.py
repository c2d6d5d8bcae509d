"""Consent records (append-only) and the decision whether a scope is live."""
