"""Cryptography: the only package of ``coordinator`` that imports ``cryptography`` (and
PyJWT, which builds on it). See ``signing`` for tokens and keys.

This module itself imports nothing, so settings can share its constants cheaply."""

# Signature algorithms a trusted issuer may use: asymmetric only; never HS* nor "none".
ASYMMETRIC_ALGORITHMS = frozenset({
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
})
