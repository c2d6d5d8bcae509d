"""The Ed25519 key that signs audit checkpoints (``CheckpointSigner``).

Kept in ``<data_dir>/audit-checkpoint-ed25519.pem`` (mode 0600), created on first use
and never at construction. The key id is the RFC 7638 thumbprint of the public key; a
checkpoint signed under another key id does not verify (rotation would add the retired
public keys here)."""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from coordinator.crypto.signing import _read_private, _write_new_key, key_id

KEY_FILE = "audit-checkpoint-ed25519.pem"


class Ed25519CheckpointSigner:
    def __init__(self, data_dir: Path | None = None, *,
                 key: ed25519.Ed25519PrivateKey | None = None) -> None:
        self._path = None if data_dir is None else data_dir / KEY_FILE
        self._key = key
        self._lock = threading.Lock()

    @classmethod
    def ephemeral(cls) -> Ed25519CheckpointSigner:
        """A fresh in-memory key (tests and benchmarks)."""
        return cls(key=ed25519.Ed25519PrivateKey.generate())

    def _private(self) -> ed25519.Ed25519PrivateKey:
        with self._lock:
            if self._key is None:
                assert self._path is not None  # noqa: S101 - one of the two is always given
                if not self._path.exists():
                    self._path.parent.mkdir(parents=True, exist_ok=True)
                    _write_new_key(self._path)
                self._key = _read_private(self._path)
            return self._key

    @property
    def key_id(self) -> str:
        return key_id(self._private().public_key())

    def sign(self, message: bytes) -> bytes:
        return self._private().sign(message)

    def verify(self, message: bytes, signature: bytes, key_id: str) -> bool:
        if key_id != self.key_id:
            return False
        try:
            self._private().public_key().verify(signature, message)
        except InvalidSignature:
            return False
        return True
