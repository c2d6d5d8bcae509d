"""A ``coordinator.ports.KeyProvider`` over HashiCorp Vault's transit secrets engine
(stdlib ``urllib``; no cryptography here: Vault holds the KEK and does the crypto).

The KEK is one transit key (``aes256-gcm96``, ``derived=true``, created on first use when
it is missing). Its versions are the KEKs: ``vault:<key>:v<N>``.

- wrap: ``POST /v1/<mount>/encrypt/<key>`` with the data key and the context (both
  base64). Vault derives a key per context, so unwrapping under another context fails.
  The blob is Vault's ciphertext (``vault:v<N>:…``), the id's version is read from it.
- unwrap: ``POST /v1/<mount>/decrypt/<key>``; the blob's version must match the id's.
- current KEK: ``GET /v1/<mount>/keys/<key>`` (``latest_version``).
- rotate: ``POST /v1/<mount>/keys/<key>/rotate``.
- retire: ``POST /v1/<mount>/keys/<key>/config`` with ``min_decryption_version``. Vault
  retires by a minimum version, so versions are retired oldest first: retiring v3 while
  v2 still decrypts raises InvalidInput instead of silently retiring v2 as well.

The token goes in ``X-Vault-Token``; redirects are not followed (the token is for the
configured address only). Every failure is KeyUnavailable (InvalidInput for a misuse)
naming the KEK id and the HTTP status, never the token nor key material.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from coordinator.errors import InvalidInput, KeyUnavailable
from coordinator.ports import WrappedKey

# Domain separation: what Vault derives from is ours alone, and never empty (Vault
# refuses an empty context for a derived key; the port allows any bytes).
CONTEXT_PREFIX = b"coordinator-kek/v1\x00"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_MOUNT = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_CIPHERTEXT = re.compile(r"vault:v([1-9][0-9]*):")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class VaultTransitKeyProvider:
    def __init__(self, addr: str, token: str, key_name: str = "coordinator", *,
                 mount: str = "transit", timeout: float = 5.0) -> None:
        url = urllib.parse.urlsplit(addr)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InvalidInput("the Vault address must be an http(s) URL", field="vault_addr")
        if not token:
            raise InvalidInput("a Vault token is needed", field="vault_token")
        if not _NAME.fullmatch(key_name):
            raise InvalidInput("a transit key name is letters, digits, '_', '.' and '-'",
                               field="vault_key")
        mount = mount.strip("/")
        if not _MOUNT.fullmatch(mount):
            raise InvalidInput("a transit mount is a path of letters, digits, '_', '.' "
                               "and '-'", field="vault_mount")
        self.addr, self.key_name, self.mount, self.timeout = (
            addr.rstrip("/"), key_name, mount, timeout)
        self.__token = token
        self._ready = False
        self._opener = urllib.request.build_opener(_NoRedirect())

    def __repr__(self) -> str:
        return (f"VaultTransitKeyProvider({self.addr!r}, key_name={self.key_name!r}, "
                f"mount={self.mount!r})")

    # -- HTTP -----------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None, *,
              kek_id: str) -> tuple[int, dict[str, Any]]:
        """``(status, data)`` of a 2xx answer (data ``{}`` when there is no body);
        KeyUnavailable for anything else, 404 included (see ``_key_info``)."""
        data = None if body is None else json.dumps(body).encode()
        # The scheme is checked in __init__ (http or https only).
        request = urllib.request.Request(  # noqa: S310
            f"{self.addr}/v1/{self.mount}/{path}", data=data, method=method,
            headers={"X-Vault-Token": self.__token, "Content-Type": "application/json",
                     "User-Agent": "coordinator-vault-transit"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, raw = int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raise self._failed(kek_id, exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise KeyUnavailable(f"Vault did not answer for {kek_id}: "
                                 f"{type(exc).__name__}: {reason}", kek_id=kek_id) from None
        if not 200 <= status < 300:
            raise self._failed(kek_id, status, raw)
        try:
            answer = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise KeyUnavailable(f"Vault gave a malformed answer for {kek_id}",
                                 kek_id=kek_id, status=status) from None
        return status, answer.get("data") or {}

    def _failed(self, kek_id: str, status: int, raw: bytes) -> KeyUnavailable:
        try:
            errors = [str(e) for e in json.loads(raw).get("errors") or ()]
        except (ValueError, AttributeError):
            errors = []
        why = "; ".join(errors)[:300].replace(self.__token, "<token>") or "no reason given"
        return KeyUnavailable(f"Vault refused the request for {kek_id}: HTTP {status}: {why}",
                              kek_id=kek_id, status=status)

    def _key_info(self) -> dict[str, Any]:
        """The transit key's metadata; the key is created (derived) when missing."""
        try:
            info = self._call("GET", f"keys/{self.key_name}", None, kek_id=self._base_id)[1]
        except KeyUnavailable as exc:
            if exc.details.get("status") != 404:
                raise
            self._call("POST", f"keys/{self.key_name}",
                       {"type": "aes256-gcm96", "derived": True}, kek_id=self._base_id)
            info = self._call("GET", f"keys/{self.key_name}", None, kek_id=self._base_id)[1]
        if not info.get("derived"):
            raise InvalidInput(
                f"the transit key {self.key_name} is not a derived key; context binding "
                "needs a key created with derived=true", field="vault_key")
        self._ready = True
        return info

    @property
    def _base_id(self) -> str:
        return f"vault:{self.key_name}"

    def _id(self, version: int) -> str:
        return f"{self._base_id}:v{version}"

    def _version_of(self, kek_id: str) -> int | None:
        prefix = f"{self._base_id}:v"
        tail = kek_id[len(prefix):] if kek_id.startswith(prefix) else ""
        return int(tail) if tail.isdigit() and not tail.startswith("0") else None

    @staticmethod
    def _context(context: bytes) -> str:
        return _b64(CONTEXT_PREFIX + bytes(context))

    # -- the port -------------------------------------------------------------------------
    def current_kek(self) -> str:
        return self._id(int(self._key_info()["latest_version"]))

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        if not self._ready:
            self._key_info()
        data = self._call("POST", f"encrypt/{self.key_name}",
                          {"plaintext": _b64(bytes(data_key)),
                           "context": self._context(context)}, kek_id=self._base_id)[1]
        ciphertext = str(data.get("ciphertext", ""))
        found = _CIPHERTEXT.match(ciphertext)
        if found is None:
            raise KeyUnavailable(f"Vault gave a malformed ciphertext for {self._base_id}",
                                 kek_id=self._base_id)
        return WrappedKey(self._id(int(found.group(1))), ciphertext.encode("ascii"))

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        kek_id = wrapped.kek_id
        version = self._version_of(kek_id)
        if version is None:
            raise KeyUnavailable(f"cannot unwrap a data key under {kek_id}: not a KEK of "
                                 f"{self._base_id}", kek_id=kek_id)
        try:
            ciphertext = wrapped.blob.decode("ascii")
        except UnicodeDecodeError:
            ciphertext = ""
        if not ciphertext.startswith(f"vault:v{version}:"):
            raise KeyUnavailable(f"cannot unwrap a data key under {kek_id}: the wrapped "
                                 "key was not made under it", kek_id=kek_id)
        data = self._call("POST", f"decrypt/{self.key_name}",
                          {"ciphertext": ciphertext, "context": self._context(context)},
                          kek_id=kek_id)[1]
        try:
            return base64.b64decode(str(data["plaintext"]), validate=True)
        except (KeyError, ValueError, binascii.Error):
            raise KeyUnavailable(f"Vault gave a malformed plaintext for {kek_id}",
                                 kek_id=kek_id) from None

    def rotate(self) -> str:
        if not self._ready:
            self._key_info()
        data = self._call("POST", f"keys/{self.key_name}/rotate", None,
                          kek_id=self._base_id)[1]
        # Vault 1.14+ answers with the key's metadata; older ones with 204 and no body.
        latest = data.get("latest_version") or self._key_info()["latest_version"]
        return self._id(int(latest))

    def retire(self, kek_id: str) -> None:
        version = self._version_of(kek_id)
        if version is None:
            raise InvalidInput(f"{kek_id} is not a KEK of {self._base_id}",
                               field="kek_id", kek_id=kek_id)
        info = self._key_info()
        latest, floor = int(info["latest_version"]), int(info["min_decryption_version"])
        if version >= latest:
            raise InvalidInput("the current key-encryption key cannot be retired"
                               if version == latest else f"{kek_id} does not exist yet",
                               field="kek_id", kek_id=kek_id)
        if version < floor:
            return                      # already retired
        if version > floor:
            raise InvalidInput(
                f"Vault retires key versions oldest first: retire {self._id(floor)} "
                f"before {kek_id}", field="kek_id", kek_id=kek_id)
        self._call("POST", f"keys/{self.key_name}/config",
                   {"min_decryption_version": version + 1}, kek_id=kek_id)
