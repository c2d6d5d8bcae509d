"""Tamper-evident audit: canonical event bodies, one hash chain per case, signed
checkpoints over all chain heads, verification and extracts. Pure: no I/O, no crypto
library (signatures go through the ``CheckpointSigner`` port). See docs/audit.md."""
