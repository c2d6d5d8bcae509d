"""What is particular to the Vault transit adapter, against the in-process emulator
(tests/support/vault_transit.py): the key is created derived on first use, a key that is
not derived is refused, Vault's refusals and a Vault that is down become KeyUnavailable
without the token, versions retire oldest first, and redirects are not followed. The
shared contract is in test_key_provider_contract.py."""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.vault_transit import VaultTransitKeyProvider
from coordinator.errors import InvalidInput, KeyUnavailable
from coordinator.ports import WrappedKey
from tests.support.vault_transit import TransitEmulator, TransitKey

TOKEN = f"hvs.{secrets.token_urlsafe(24)}"      # random per run, like a real one
CTX = b"case:1|audience:nav"


@pytest.fixture
def emulator() -> TransitEmulator:
    return TransitEmulator(token=TOKEN)


@pytest.fixture
def addr(emulator: TransitEmulator) -> Iterator[str]:
    with emulator.serve() as address:
        yield address


def test_key_is_created_derived_on_first_use(emulator: TransitEmulator, addr: str) -> None:
    p = VaultTransitKeyProvider(addr, TOKEN, "kek")
    assert emulator.requests == []                    # construction sends nothing
    wrapped = p.wrap(b"d" * 32, CTX)
    assert emulator.keys["kek"].derived
    assert wrapped.kek_id == "vault:kek:v1"
    assert wrapped.blob.startswith(b"vault:v1:")
    assert emulator.requests == [("GET", "/v1/transit/keys/kek"),
                                 ("POST", "/v1/transit/keys/kek"),
                                 ("GET", "/v1/transit/keys/kek"),
                                 ("POST", "/v1/transit/encrypt/kek")]
    emulator.requests.clear()
    assert p.unwrap(wrapped, CTX) == b"d" * 32
    assert emulator.requests == [("POST", "/v1/transit/decrypt/kek")]


def test_a_key_that_is_not_derived_is_refused(emulator: TransitEmulator, addr: str) -> None:
    emulator.keys["plain"] = TransitKey(derived=False)
    emulator.keys["plain"].rotate()
    with pytest.raises(InvalidInput, match="derived=true"):
        VaultTransitKeyProvider(addr, TOKEN, "plain").wrap(b"d" * 32, CTX)
    assert ("POST", "/v1/transit/encrypt/plain") not in emulator.requests


def test_another_mount(addr: str) -> None:
    emulator = TransitEmulator(token=TOKEN, mount="team/transit")
    with emulator.serve() as other:
        p = VaultTransitKeyProvider(other, TOKEN, "kek", mount="/team/transit/")
        assert p.unwrap(p.wrap(b"d" * 32, CTX), CTX) == b"d" * 32
    with pytest.raises(KeyUnavailable, match="HTTP 404"):
        VaultTransitKeyProvider(addr, TOKEN, "kek", mount="elsewhere").current_kek()


def test_refusals_name_the_status_never_the_token(emulator: TransitEmulator,
                                                  addr: str) -> None:
    good = VaultTransitKeyProvider(addr, TOKEN, "kek")
    wrapped = good.wrap(b"d" * 32, CTX)
    bad = VaultTransitKeyProvider(addr, "hvs.not-the-token", "kek")
    for attempt in (bad.current_kek, lambda: bad.wrap(b"d" * 32, CTX),
                    lambda: bad.unwrap(wrapped, CTX), bad.rotate):
        with pytest.raises(KeyUnavailable, match="HTTP 403: permission denied") as caught:
            attempt()
        assert caught.value.details["status"] == 403
        text = f"{caught.value}{caught.value!r}{caught.value.details}"
        assert "hvs." not in text
    assert TOKEN not in repr(good) and "hvs." not in repr(bad)
    with pytest.raises(KeyUnavailable, match="message authentication failed") as failed:
        good.unwrap(wrapped, b"other")
    assert failed.value.details == {"kek_id": "vault:kek:v1", "status": 400}


def test_vault_down_is_key_unavailable() -> None:
    with socket.socket() as s:               # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = VaultTransitKeyProvider(f"http://127.0.0.1:{port}", TOKEN, "kek", timeout=2)
    with pytest.raises(KeyUnavailable, match="Vault did not answer") as caught:
        p.unwrap(WrappedKey("vault:kek:v1", b"vault:v1:AAAA"), CTX)
    assert caught.value.details["kek_id"] == "vault:kek:v1"
    with pytest.raises(KeyUnavailable, match="Vault did not answer"):
        p.wrap(b"d" * 32, CTX)


def test_versions_retire_oldest_first(emulator: TransitEmulator, addr: str) -> None:
    p = VaultTransitKeyProvider(addr, TOKEN, "kek")
    v1 = p.wrap(b"1" * 32, CTX)
    assert p.rotate() == "vault:kek:v2"
    v2 = p.wrap(b"2" * 32, CTX)
    assert p.rotate() == "vault:kek:v3"
    with pytest.raises(InvalidInput, match="retire vault:kek:v1 before vault:kek:v2"):
        p.retire("vault:kek:v2")
    assert p.unwrap(v1, CTX) == b"1" * 32             # nothing was retired
    for not_ours in ("vault:other:v1", "file:v1", "vault:kek:v01", "vault:kek:v"):
        with pytest.raises(InvalidInput, match="not a KEK"):
            p.retire(not_ours)
    with pytest.raises(InvalidInput, match="does not exist yet"):
        p.retire("vault:kek:v9")
    p.retire("vault:kek:v1")
    p.retire("vault:kek:v2")
    assert emulator.keys["kek"].min_decryption_version == 3
    for gone in (v1, v2):
        with pytest.raises(KeyUnavailable, match="too old"):
            p.unwrap(gone, CTX)


@pytest.mark.parametrize(("args", "field"), [
    (("ftp://vault", TOKEN, "kek"), "vault_addr"),
    (("https://", TOKEN, "kek"), "vault_addr"),
    (("https://vault.example", "", "kek"), "vault_token"),
    (("https://vault.example", TOKEN, "../sys"), "vault_key"),
    (("https://vault.example", TOKEN, "kek/x"), "vault_key"),
])
def test_bad_settings(args: tuple[str, str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        VaultTransitKeyProvider(*args)
    assert caught.value.details["field"] == field
    assert TOKEN not in str(caught.value)


def test_redirects_are_not_followed() -> None:
    """A redirect (say, from a standby node) must not carry the token elsewhere."""
    seen: list[dict[str, Any]] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    target = f"http://127.0.0.1:{other.server_address[1]}/v1/transit/keys/kek"

    class Redirect(Elsewhere):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    first = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True)
               for s in (first, other)]
    for t in threads:
        t.start()
    try:
        p = VaultTransitKeyProvider(f"http://127.0.0.1:{first.server_address[1]}", TOKEN,
                                    "kek")
        with pytest.raises(KeyUnavailable, match="HTTP 307"):
            p.current_kek()
        assert seen == []
    finally:
        for s in (first, other):
            s.shutdown()
            s.server_close()
