"""Signed tokens: the development issuer's key, JWKS and local public keys, JWT decoding.

The only module of ``coordinator`` that imports ``cryptography`` and ``jwt`` (PyJWT). It
knows nothing of roles or HTTP: callers get verified claims or a ``TokenRejected`` whose
``reason`` is for the server log only (it never contains the token or any key).

The development issuer signs with an Ed25519 key (``EdDSA``) kept in one PEM file, created
on first use with mode 0600 and linked into place atomically, so two processes racing to
create it agree on one key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from coordinator.crypto import ASYMMETRIC_ALGORITHMS

DEV_ALGORITHM = "EdDSA"
DEV_KEY_FILE = "dev-issuer-ed25519.pem"
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class TokenRejected(Exception):
    """The token is not acceptable. ``reason`` is a short code for the server log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(Exception):
    """The issuer's signing keys could not be fetched (not the caller's fault)."""


class KeyFileError(Exception):
    """A key file is missing, unreadable or too open. The message names the path only."""


class KeySource(Protocol):
    def key_for(self, token: str) -> Any:
        """The public key that should have signed ``token``.

        Raises: TokenRejected (no such key), KeysUnavailable."""
        ...


# -- the development issuer's key ------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _raw_public(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: ed25519.Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint of an Ed25519 public key."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public(key))},
                           separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def _write_new_key(path: Path) -> None:
    """Create ``path`` with a fresh key, 0600, unless some other process got there first."""
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):     # someone else's key wins
            os.link(tmp, path)          # atomic, and never replaces an existing key
    finally:
        tmp.unlink(missing_ok=True)


def _read_private(path: Path) -> ed25519.Ed25519PrivateKey:
    try:
        if path.stat().st_mode & 0o077:
            raise KeyFileError(f"{path} kan leses av andre enn eieren (krever modus 0600)")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except KeyFileError:
        raise
    except (OSError, ValueError, TypeError):
        raise KeyFileError(f"kunne ikke lese nøkkelfilen {path}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyFileError(f"{path} inneholder ikke en Ed25519-nøkkel")
    return key


def dev_key_path(data_dir: Path) -> Path:
    return data_dir / DEV_KEY_FILE


def load_or_create_dev_key(data_dir: Path) -> ed25519.Ed25519PrivateKey:
    """The development issuer's private key, created in ``data_dir`` on first use."""
    path = dev_key_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _write_new_key(path)
    return _read_private(path)


def mint_dev_token(key: ed25519.Ed25519PrivateKey, claims: Mapping[str, Any]) -> str:
    """A JWT over ``claims`` signed by the development issuer's key."""
    return jwt.encode(dict(claims), key, algorithm=DEV_ALGORITHM,
                      headers={"kid": key_id(key.public_key()), "typ": "JWT"})


class DevIssuerKeys:
    """The development issuer's public key, read from ``data_dir`` when first needed.

    Verifying never creates the key: while the file does not exist no token can carry a
    valid signature, and the file is looked for again on the next token."""

    def __init__(self, data_dir: Path) -> None:
        self._path = dev_key_path(data_dir)
        self._key: ed25519.Ed25519PublicKey | None = None
        self._lock = threading.Lock()

    def key_for(self, token: str) -> Any:
        with self._lock:
            if self._key is None:
                if not self._path.exists():
                    raise TokenRejected("dev issuer key not created yet")
                try:
                    self._key = _read_private(self._path).public_key()
                except KeyFileError as exc:
                    raise KeysUnavailable(str(exc)) from None
            return self._key


# -- other issuers' keys ---------------------------------------------------------------------
def load_public_key(path: Path) -> PublicKey:
    """A PEM public key (RSA, EC or Ed25519) from ``path``. Raises: KeyFileError."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError):
        raise KeyFileError(f"kunne ikke lese offentlig nøkkel fra {path}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
                      | rsa.RSAPublicKey):
        raise KeyFileError(f"{path}: nøkkeltypen støttes ikke")
    return key


@dataclass(frozen=True)
class StaticKey:
    """One configured public key, whatever the token's ``kid``."""

    key: PublicKey

    def key_for(self, token: str) -> Any:
        return self.key


class JwksKeys:
    """Keys from an issuer's JWKS URL, fetched on the first token (never at construction)
    and cached for ``lifespan`` seconds; an unknown ``kid`` refetches at most every 30 s."""

    def __init__(self, url: str, *, lifespan: float = 300, timeout: float = 5) -> None:
        self.url = url
        self._client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=lifespan,
                                       timeout=timeout)

    def key_for(self, token: str) -> Any:
        try:
            return self._client.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise KeysUnavailable(f"JWKS fetch failed: {type(exc).__name__}") from None
        except jwt.PyJWKClientError:
            raise TokenRejected("no JWKS key for the token's kid") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"unreadable token ({type(exc).__name__})") from None


# -- decoding -------------------------------------------------------------------------------
def unverified_issuer(token: str) -> str:
    """The ``iss`` the token claims, before anything is verified (to pick the issuer)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"malformed token ({type(exc).__name__})") from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise TokenRejected("no iss claim")
    return issuer


_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.MissingRequiredClaimError, "missing required claim"),
    (jwt.InvalidKeyError, "key does not fit the algorithm"),
)


def _reason(exc: jwt.PyJWTError) -> str:
    for cls, reason in _REASONS:
        if isinstance(exc, cls):
            return reason
    return f"invalid token ({type(exc).__name__})"


def decode_verified(token: str, keys: KeySource, *, algorithms: Iterable[str], issuer: str,
                    audience: str, required: Sequence[str]) -> dict[str, Any]:
    """The claims of ``token`` once its signature, algorithm, issuer and audience check
    out and every ``required`` claim is present. Times are the caller's to check (against
    its own clock). Raises: TokenRejected, KeysUnavailable."""
    allowed = sorted(set(algorithms) & ASYMMETRIC_ALGORITHMS)
    if not allowed:
        raise TokenRejected("issuer allows no usable algorithm")
    key = keys.key_for(token)
    options: Any = {"verify_signature": True, "verify_exp": False, "verify_nbf": False,
                    "verify_iat": False, "verify_aud": True, "verify_iss": True,
                    "require": list(required)}
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=allowed, options=options,
                                            audience=audience, issuer=issuer)
    except jwt.PyJWTError as exc:
        raise TokenRejected(_reason(exc)) from None
    return claims
