"""Key-encryption keys (KEKs) kept by the service itself: the embedded default
``KeyProvider`` (``LocalFileKeyProvider``) and one whose KEKs come from the environment
(``StaticKeyProvider``). See docs/key-providers.md.

Both wrap a data key with AES-256-GCM under the current KEK, a random 96-bit nonce and
the KEK id and the context as associated data; the blob is ``nonce || ciphertext+tag``.
Unwrapping with another context, under another KEK id, or with an altered blob fails.

The keyring file (``<data_dir>/kek-keyring.json``, mode 0600) is JSON::

    {"format": "coordinator-kek-keyring/1", "current": "file:<16 hex>",
     "keys": {"file:<16 hex>": "<base64 of 32 random bytes>", ...},
     "retired": ["file:<16 hex>", ...]}

It is created on first use (never at construction), always rewritten whole through a
0600 temporary file, fsync and ``os.replace``, and changed only under an exclusive
``flock`` on ``kek-keyring.json.lock``, so two processes that rotate at once both land.
A keyring that others than its owner may read is refused. Key material never appears in
a message, an exception or a ``repr``."""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from coordinator.errors import InvalidInput, KeyUnavailable
from coordinator.ports import WrappedKey

KEYRING_FILE = "kek-keyring.json"
KEYRING_FORMAT = "coordinator-kek-keyring/1"
KEK_BYTES = 32
NONCE_BYTES = 12


def _aad(kek_id: str, context: bytes) -> bytes:
    ident = kek_id.encode()
    return struct.pack(">I", len(ident)) + ident + context


def _seal(key: bytes, kek_id: str, data_key: bytes, context: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, bytes(data_key), _aad(kek_id, context))


def _open(key: bytes, wrapped: WrappedKey, context: bytes) -> bytes:
    blob = wrapped.blob
    if len(blob) <= NONCE_BYTES:
        raise InvalidTag
    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                               _aad(wrapped.kek_id, context))


def _unavailable(kek_id: str, why: str) -> KeyUnavailable:
    return KeyUnavailable(f"cannot unwrap a data key under {kek_id}: {why}", kek_id=kek_id)


@dataclass(frozen=True)
class _Ring:
    current: str
    keys: Mapping[str, bytes] = field(repr=False)
    retired: frozenset[str] = frozenset()


_Edit = Callable[[_Ring], _Ring]


class _AesGcmProvider:
    """Wrap and unwrap over a ``_Ring`` that subclasses supply."""

    def _ring(self) -> _Ring:
        raise NotImplementedError

    def current_kek(self) -> str:
        return self._ring().current

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        ring = self._ring()
        return WrappedKey(ring.current, _seal(ring.keys[ring.current], ring.current,
                                              data_key, context))

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        ring = self._ring()
        key = ring.keys.get(wrapped.kek_id)
        if key is None:
            why = "the key was retired" if wrapped.kek_id in ring.retired else "unknown key"
            raise _unavailable(wrapped.kek_id, why)
        try:
            return _open(key, wrapped, context)
        except InvalidTag:
            raise _unavailable(wrapped.kek_id,
                               "the wrapped key or its context does not match") from None


class LocalFileKeyProvider(_AesGcmProvider):
    """KEKs in a keyring file under ``data_dir``; ids are ``file:<16 hex>`` (random, not
    derived from the key). Thread-safe; several processes may share one ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / KEYRING_FILE
        self._lock_path = self.path.with_name(KEYRING_FILE + ".lock")
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, int, int], _Ring] | None = None

    def __repr__(self) -> str:
        return f"LocalFileKeyProvider({str(self.path)!r})"

    # -- reading ------------------------------------------------------------------------
    def _load(self) -> _Ring | None:
        """The keyring as on disk now (cached while the file is unchanged); ``None`` when
        there is none yet."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        self._check_mode(st.st_mode)
        stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._cached is not None and self._cached[0] == stamp:
                return self._cached[1]
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            self._check_mode(st.st_mode)
            ring = self._parse(f.read())
        with self._lock:
            self._cached = ((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size), ring)
        return ring

    def _check_mode(self, mode: int) -> None:
        if mode & 0o077:
            raise KeyUnavailable(
                f"the keyring {self.path} may be read by others than its owner "
                f"(mode {mode & 0o777:04o}); refusing to use it until it is mode 0600",
                path=str(self.path), mode=f"{mode & 0o777:04o}")

    def _parse(self, raw: bytes) -> _Ring:
        try:
            doc = json.loads(raw)
            if doc["format"] != KEYRING_FORMAT:
                raise ValueError
            keys = {str(k): base64.b64decode(v, validate=True)
                    for k, v in doc["keys"].items()}
            ring = _Ring(str(doc["current"]), keys,
                         frozenset(str(r) for r in doc.get("retired", ())))
            if ring.current not in keys or any(len(k) != KEK_BYTES for k in keys.values()):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            # No detail from the content: it holds key material.
            raise KeyUnavailable(f"the keyring {self.path} is not a valid keyring",
                                 path=str(self.path)) from None
        return ring

    def _ring(self) -> _Ring:
        ring = self._load()
        if ring is None:
            ring = self._change(lambda r: r)   # first use: create it
        return ring

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        if self._load() is None:      # never create a keyring just to fail an unwrap
            raise _unavailable(wrapped.kek_id, f"there is no keyring at {self.path}")
        return super().unwrap(wrapped, context)

    # -- changing -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)                # closing releases the lock

    def _change(self, edit: _Edit) -> _Ring:
        """Under the file lock: read the keyring afresh (a new one with one KEK when
        there is none), apply ``edit`` and write the result atomically."""
        with self._exclusive():
            ring = self._load()
            if ring is None:
                kek = _new_id(())
                ring = _Ring(kek, {kek: secrets.token_bytes(KEK_BYTES)})
                before = None
            else:
                before = ring
            ring = edit(ring)
            if ring is not before:
                self._write(ring)
            return ring

    def _write(self, ring: _Ring) -> None:
        body = json.dumps({
            "format": KEYRING_FORMAT, "current": ring.current,
            "keys": {k: base64.b64encode(v).decode("ascii") for k, v in ring.keys.items()},
            "retired": sorted(ring.retired),
        }, indent=1).encode()
        tmp = self.path.with_name(f".{KEYRING_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def rotate(self) -> str:
        def add(ring: _Ring) -> _Ring:
            kek = _new_id(ring.keys)
            return _Ring(kek, {**ring.keys, kek: secrets.token_bytes(KEK_BYTES)},
                         ring.retired)
        return self._change(add).current

    def retire(self, kek_id: str) -> None:
        if self._load() is None:
            return                     # no keyring yet: nothing to forget, nothing made

        def drop(ring: _Ring) -> _Ring:
            if kek_id == ring.current:
                raise InvalidInput("the current key-encryption key cannot be retired",
                                   field="kek_id", kek_id=kek_id)
            if kek_id not in ring.keys:
                return ring            # unknown or already retired: nothing to forget
            return _Ring(ring.current, {k: v for k, v in ring.keys.items() if k != kek_id},
                         ring.retired | {kek_id})
        self._change(drop)


def _new_id(taken: Mapping[str, bytes] | Sequence[str]) -> str:
    while True:
        kek = f"file:{secrets.token_hex(8)}"
        if kek not in taken:
            return kek


class StaticKeyProvider(_AesGcmProvider):
    """KEKs handed in by the deployment (``COORDINATOR_KEK``: comma-separated base64 of
    32-byte keys, the first one current, the others still unwrap). Read-only: rotating
    and retiring mean deploying a new value, so ``rotate``/``retire`` raise InvalidInput.
    Ids are ``env:<16 hex>``, an HMAC fingerprint of the key (stable, reveals nothing)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys or any(len(k) != KEK_BYTES for k in keys):
            raise InvalidInput(f"a key-encryption key must be {KEK_BYTES} bytes",
                               field="kek")
        ids = [_fingerprint(k) for k in keys]
        self._fixed = _Ring(ids[0], dict(zip(ids, keys, strict=True)))

    @classmethod
    def from_base64(cls, value: str) -> StaticKeyProvider:
        try:
            keys = [base64.b64decode(part.strip(), validate=True)
                    for part in value.split(",") if part.strip()]
        except (ValueError, binascii.Error):
            raise InvalidInput("COORDINATOR_KEK must be base64 (comma-separated for "
                               "older keys)", field="kek") from None
        return cls(keys)

    def __repr__(self) -> str:
        return f"StaticKeyProvider(current={self._fixed.current!r})"

    def _ring(self) -> _Ring:
        return self._fixed

    def rotate(self) -> str:
        raise InvalidInput("the key-encryption keys come from COORDINATOR_KEK: rotate by "
                           "putting a new key first in it (keep the old ones after it)",
                           field="kek")

    def retire(self, kek_id: str) -> None:
        if kek_id == self._fixed.current:
            raise InvalidInput("the current key-encryption key cannot be retired",
                               field="kek_id", kek_id=kek_id)
        raise InvalidInput("the key-encryption keys come from COORDINATOR_KEK: retire "
                           "a key by removing it from there", field="kek_id", kek_id=kek_id)


def _fingerprint(key: bytes) -> str:
    return "env:" + hmac.new(key, b"coordinator kek id", hashlib.sha256).hexdigest()[:16]
