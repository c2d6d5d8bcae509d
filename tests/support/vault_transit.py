"""An in-process EMULATOR of the few HashiCorp Vault transit endpoints that
``adapters.vault_transit`` uses, so the adapter's HTTP code runs in CI where Vault is
not installed. It is not Vault and proves nothing about Vault itself: the contract suite
also runs against a real Vault when VAULT_ADDR and VAULT_TOKEN are set.

What it does, after Vault's transit API (developer.hashicorp.com/vault/api-docs/secret/transit):

- ``X-Vault-Token`` must equal the server's token, else 403 ``permission denied``.
- ``GET  /v1/<mount>/keys/<name>``: metadata (``latest_version``, ``min_decryption_version``,
  ``derived``, ``keys`` = version -> creation time); 404 when missing.
- ``POST /v1/<mount>/keys/<name>`` ``{"type", "derived"}``: create (aes256-gcm96 only);
  an existing key is left as it is.
- ``POST /v1/<mount>/keys/<name>/rotate``: a new random version; answers the metadata.
- ``POST /v1/<mount>/keys/<name>/config`` ``{"min_decryption_version"}``.
- ``POST /v1/<mount>/encrypt/<name>`` / ``decrypt/<name>``: AES-256-GCM with a random
  96-bit nonce, ciphertext ``vault:v<N>:base64(nonce || ct+tag)``; a derived key needs a
  non-empty context and uses HKDF-SHA256(version key, info=context) as Vault does.
  Errors are 400 with Vault's messages (too old, too new, authentication failed, …).

Not emulated: upsert on encrypt, batch input, convergent encryption, other key types,
auth methods, policies other than the one token, leases, namespaces.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@dataclass
class TransitKey:
    derived: bool
    versions: list[bytes] = field(default_factory=list)
    created: list[int] = field(default_factory=list)
    min_decryption_version: int = 1

    def rotate(self) -> None:
        self.versions.append(secrets.token_bytes(32))
        self.created.append(int(time.time()))

    def metadata(self, name: str) -> dict[str, Any]:
        return {"name": name, "type": "aes256-gcm96", "derived": self.derived,
                "latest_version": len(self.versions),
                "min_decryption_version": self.min_decryption_version,
                "min_encryption_version": 0, "deletion_allowed": False,
                "exportable": False, "supports_encryption": True,
                "supports_decryption": True, "supports_derivation": True,
                "keys": {str(i + 1): t for i, t in enumerate(self.created)}}

    def key_for(self, version: int, context: bytes) -> bytes:
        key = self.versions[version - 1]
        if not self.derived:
            return key
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context).derive(key)


class _Refused(Exception):
    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(status)
        self.status, self.errors = status, list(errors)


class TransitEmulator:
    """State of the emulated engine; ``serve()`` runs it on a loopback port."""

    def __init__(self, token: str, mount: str = "transit") -> None:
        self.token, self.mount = token, mount
        self.keys: dict[str, TransitKey] = {}
        self.requests: list[tuple[str, str]] = []     # (method, path) as received
        self.lock = threading.Lock()

    def key_material(self) -> list[bytes]:
        """Every version key (for tests that check nothing leaks)."""
        with self.lock:
            return [v for k in self.keys.values() for v in k.versions]

    # -- the API --------------------------------------------------------------------------
    def handle(self, method: str, path: str, token: str | None,
               body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        self.requests.append((method, path))
        if token != self.token:
            raise _Refused(403, "permission denied")
        prefix = f"/v1/{self.mount}/"
        if not path.startswith(prefix):
            raise _Refused(404, f"no handler for route \"{path[4:]}\"")
        parts = path[len(prefix):].split("/")
        with self.lock:
            match method, parts:
                case "GET", ["keys", name]:
                    return 200, {"data": self._get(name).metadata(name)}
                case "POST", ["keys", name]:
                    return self._create(name, body)
                case "POST", ["keys", name, "rotate"]:
                    key = self._get(name)
                    key.rotate()
                    return 200, {"data": key.metadata(name)}
                case "POST", ["keys", name, "config"]:
                    return self._config(name, body)
                case "POST", ["encrypt", name]:
                    return 200, {"data": self._encrypt(name, body)}
                case "POST", ["decrypt", name]:
                    return 200, {"data": self._decrypt(name, body)}
        raise _Refused(405, "unsupported operation")

    def _get(self, name: str) -> TransitKey:
        key = self.keys.get(name)
        if key is None:
            raise _Refused(404)
        return key

    def _existing(self, name: str) -> TransitKey:
        key = self.keys.get(name)
        if key is None:
            raise _Refused(400, "encryption key not found")
        return key

    def _create(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        if body.get("type", "aes256-gcm96") != "aes256-gcm96":
            raise _Refused(400, "the emulator knows only aes256-gcm96")
        if name in self.keys:
            return 200, {"warnings": [f"key {name} already existed"]}
        key = TransitKey(derived=bool(body.get("derived", False)))
        key.rotate()
        self.keys[name] = key
        return 204, None

    def _config(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        key = self._existing(name)
        wanted = int(body.get("min_decryption_version", 0))
        if wanted > len(key.versions):
            raise _Refused(400, "cannot set min decryption version to a value greater "
                                "than the latest version")
        if wanted > 0:
            key.min_decryption_version = wanted
        return 204, None

    @staticmethod
    def _b64(body: dict[str, Any], name: str) -> bytes:
        try:
            return base64.b64decode(str(body.get(name, "")), validate=True)
        except (ValueError, binascii.Error):
            raise _Refused(400, f"failed to base64-decode {name}") from None

    def _context(self, key: TransitKey, body: dict[str, Any]) -> bytes:
        context = self._b64(body, "context")
        if key.derived and not context:
            raise _Refused(400, "missing 'context' for key derivation; the key was "
                                "created using a derived key, which means additional, "
                                "per-request information must be included in order to "
                                "perform operations with the key")
        return context

    def _encrypt(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        key = self._existing(name)
        plaintext = self._b64(body, "plaintext")
        version = len(key.versions)
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(key.key_for(version, self._context(key, body))).encrypt(
            nonce, plaintext, None)
        return {"ciphertext": f"vault:v{version}:{base64.b64encode(nonce + sealed).decode()}",
                "key_version": version}

    def _decrypt(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        key = self._existing(name)
        context = self._context(key, body)
        found = re.fullmatch(r"vault:v([0-9]+):(.*)", str(body.get("ciphertext", "")),
                             re.DOTALL)
        if found is None:
            raise _Refused(400, "invalid ciphertext: no prefix")
        version = int(found.group(1))
        if version > len(key.versions):
            raise _Refused(400, "invalid ciphertext: version is too new")
        if version < key.min_decryption_version:
            raise _Refused(400, "ciphertext or signature version is disallowed by policy "
                                "(too old)")
        try:
            blob = base64.b64decode(found.group(2), validate=True)
        except (ValueError, binascii.Error):
            raise _Refused(400, "invalid ciphertext: could not decode base64") from None
        if len(blob) < 12 + 16:
            raise _Refused(400, "invalid ciphertext: too short")
        try:
            plain = AESGCM(key.key_for(max(version, 1), context)).decrypt(
                blob[:12], blob[12:], None)
        except InvalidTag:
            raise _Refused(400, "cipher: message authentication failed") from None
        return {"plaintext": base64.b64encode(plain).decode()}

    # -- the server -----------------------------------------------------------------------
    @contextmanager
    def serve(self) -> Iterator[str]:
        """Run on 127.0.0.1 (a free port); yields the address, e.g. http://127.0.0.1:PORT."""
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw.strip() else {}
                    status, answer = emulator.handle(self.command, self.path,
                                                     self.headers.get("X-Vault-Token"), body)
                except _Refused as exc:
                    status, answer = exc.status, {"errors": exc.errors}
                except ValueError:
                    status, answer = 400, {"errors": ["failed to parse JSON input"]}
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
