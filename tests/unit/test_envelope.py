"""crypto.envelope: AES-256-GCM bound to (case, document, audience, revision).

A ciphertext opens only with its key and its exact binding; any other case, document,
audience or revision, any altered byte and any other key is refused with DecryptionFailed,
whose message names ids only."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.cases.document_model import Binding
from coordinator.crypto.envelope import NONCE_BYTES, TAG_BYTES, AesGcmCipher
from coordinator.errors import DecryptionFailed

CIPHER = AesGcmCipher()
CASE = uuid.UUID("00000000-0000-4000-8000-000000000001")
DOC = uuid.UUID("00000000-0000-4000-8000-0000000000d1")
BINDING = Binding(CASE, DOC, "health", 3)
TEXT = "Kartlegging: søvnvansker, ønsker gradert sykmelding.".encode()


def test_a_sealed_document_opens_with_its_key_and_binding() -> None:
    key = CIPHER.new_key()
    sealed = CIPHER.seal(key, TEXT, BINDING)
    assert TEXT not in sealed
    assert len(sealed) == NONCE_BYTES + len(TEXT) + TAG_BYTES
    assert CIPHER.open(key, sealed, BINDING) == TEXT


def test_two_seals_of_the_same_text_differ() -> None:
    key = CIPHER.new_key()
    assert CIPHER.seal(key, TEXT, BINDING) != CIPHER.seal(key, TEXT, BINDING)
    assert CIPHER.new_key() != CIPHER.new_key() and len(CIPHER.new_key()) == 32


@pytest.mark.parametrize("moved", [
    {"case_id": uuid.UUID("00000000-0000-4000-8000-000000000002")},
    {"document_id": uuid.UUID("00000000-0000-4000-8000-0000000000d2")},
    {"audience": "nav"},
    {"audience": "shared"},
    {"revision": 2},
    {"revision": 4},
], ids=["other-case", "other-document", "audience-nav", "audience-shared",
        "older-revision", "newer-revision"])
def test_a_ciphertext_bound_elsewhere_is_refused(moved: dict[str, object]) -> None:
    key = CIPHER.new_key()
    sealed = CIPHER.seal(key, TEXT, BINDING)
    other = dataclasses.replace(BINDING, **moved)  # type: ignore[arg-type]
    with pytest.raises(DecryptionFailed) as refused:
        CIPHER.open(key, sealed, other)
    assert refused.value.code == "decryption-failed"
    assert key.hex() not in str(refused.value) and TEXT.decode() not in str(refused.value)


def test_another_key_is_refused() -> None:
    sealed = CIPHER.seal(CIPHER.new_key(), TEXT, BINDING)
    with pytest.raises(DecryptionFailed):
        CIPHER.open(CIPHER.new_key(), sealed, BINDING)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(position: int, bit: int) -> None:
    key = CIPHER.new_key()
    sealed = bytearray(CIPHER.seal(key, TEXT, BINDING))
    sealed[position % len(sealed)] ^= 1 << bit
    with pytest.raises(DecryptionFailed):
        CIPHER.open(key, bytes(sealed), BINDING)


@pytest.mark.parametrize("cut", [0, 1, NONCE_BYTES, NONCE_BYTES + TAG_BYTES - 1, -1],
                         ids=["empty", "one-byte", "nonce-only", "short-tag", "truncated"])
def test_a_truncated_ciphertext_is_refused(cut: int) -> None:
    key = CIPHER.new_key()
    sealed = CIPHER.seal(key, TEXT, BINDING)
    with pytest.raises(DecryptionFailed):
        CIPHER.open(key, sealed[:cut], BINDING)


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(DecryptionFailed):
        CIPHER.seal(b"short", TEXT, BINDING)


def test_the_associated_data_is_unambiguous() -> None:
    """Fields cannot run into each other: the audience "a,b" is not ("a", "b")."""
    a = Binding(CASE, DOC, "health", 12).associated_data()
    b = Binding(CASE, DOC, "health1", 2).associated_data()
    assert a != b
    assert str(CASE).encode() in a and b"health" in a
