"""Envelope encryption of documents: AES-256-GCM under a data key, bound to its place.

``AesGcmCipher`` implements ``ports.DocumentCipher``. A sealed document is
``nonce (12 random bytes) || ciphertext || tag (16 bytes)``; the associated data is
``Binding.associated_data()`` (case id, document id, audience, revision), so a ciphertext
copied to another case, document, audience or revision fails to authenticate, exactly like
an altered one. Data keys are 32 random bytes; they are stored only wrapped by a
``KeyProvider`` (docs/encryption.md). Nothing here logs, and no error carries key bytes.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from coordinator.cases.document_model import Binding
from coordinator.errors import DecryptionFailed

KEY_BYTES = 32           # AES-256
NONCE_BYTES = 12         # 96-bit random nonces: far below 2^32 seals per key
TAG_BYTES = 16


class AesGcmCipher:
    def new_key(self) -> bytes:
        return secrets.token_bytes(KEY_BYTES)

    def seal(self, key: bytes, plaintext: bytes, binding: Binding) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(_checked(key)).encrypt(nonce, plaintext,
                                                     binding.associated_data())

    def open(self, key: bytes, sealed: bytes, binding: Binding) -> bytes:
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise _failed(binding)
        try:
            return AESGCM(_checked(key)).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                                 binding.associated_data())
        except InvalidTag:
            raise _failed(binding) from None

    def __repr__(self) -> str:
        return "AesGcmCipher()"


def _checked(key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise DecryptionFailed(f"a data key must be {KEY_BYTES} bytes")
    return key


def _failed(binding: Binding) -> DecryptionFailed:
    return DecryptionFailed(
        f"document {binding.document_id} did not decrypt: altered, or not bound to case "
        f"{binding.case_id}, audience {binding.audience}, revision {binding.revision}",
        document_id=str(binding.document_id))
