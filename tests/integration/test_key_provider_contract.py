"""One contract for every ``KeyProvider``: the fake (``InMemoryKeyProvider``), the local
keyring file, KEKs from the environment, and Vault transit (against the in-process
emulator in tests/support/vault_transit.py, and against a real Vault when VAULT_ADDR and
VAULT_TOKEN are set).

What a provider must do: round-trip a data key under the context it was wrapped with and
no other; refuse an altered blob or a blob under another KEK id; after ``rotate`` wrap
under the new KEK while old wraps still unwrap; after ``retire`` refuse old wraps; refuse
to retire the current KEK; keep ids stable across instances over the same storage; and
never put key material in an error or a repr.
"""

from __future__ import annotations

import base64
import json
import multiprocessing as mp
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.vault_transit import VaultTransitKeyProvider
from coordinator.bootstrap import build_key_provider
from coordinator.config import Settings
from coordinator.crypto.key_file import KEYRING_FILE, LocalFileKeyProvider, StaticKeyProvider
from coordinator.errors import CoordinatorError, InvalidInput, KeyUnavailable
from coordinator.ports import KeyProvider, WrappedKey
from coordinator.testing import InMemoryKeyProvider
from tests.support.vault_transit import TransitEmulator

CTX = b"case:00000000-0000-4000-8000-000000000001|audience:nav"
OTHER_CTX = b"case:00000000-0000-4000-8000-000000000002|audience:nav"


@dataclass
class Backend:
    """``make()`` opens a provider over the backend's storage (the same storage each
    call when ``persistent``). ``secrets()`` lists the material that must never leak."""

    make: Callable[[], KeyProvider]
    persistent: bool
    rotates: bool = True
    secrets: Callable[[], Sequence[bytes]] = lambda: ()


def _file_backend(tmp_path: Path) -> Backend:
    def material() -> list[bytes]:
        doc = json.loads((tmp_path / KEYRING_FILE).read_text())
        return [base64.b64decode(v) for v in doc["keys"].values()]
    return Backend(lambda: LocalFileKeyProvider(tmp_path), persistent=True, secrets=material)


def _env_backend() -> Backend:
    keys = [secrets.token_bytes(32), secrets.token_bytes(32)]
    value = ",".join(base64.b64encode(k).decode() for k in keys)
    return Backend(lambda: StaticKeyProvider.from_base64(value), persistent=True,
                   rotates=False, secrets=lambda: keys)


def _memory_backend() -> Backend:
    one = InMemoryKeyProvider()
    return Backend(lambda: one, persistent=False)


def _real_vault_backend() -> Backend:
    addr, token = os.environ.get("VAULT_ADDR"), os.environ.get("VAULT_TOKEN")
    if not addr or not token:
        pytest.skip("real Vault: set VAULT_ADDR and VAULT_TOKEN to run the contract against "
                    "a Vault with transit enabled (Vault is not installed here)")
    mount = os.environ.get("VAULT_TRANSIT_MOUNT", "transit")
    name = f"coordinator-contract-{secrets.token_hex(6)}"      # a fresh key per test
    return Backend(lambda: VaultTransitKeyProvider(addr, token, name, mount=mount),
                   persistent=True, secrets=lambda: [token.encode()])


@pytest.fixture(params=["memory", "file", "env", "vault-emulator", "vault-real"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind = request.param
    if kind == "memory":
        yield _memory_backend()
    elif kind == "file":
        yield _file_backend(tmp_path)
    elif kind == "env":
        yield _env_backend()
    elif kind == "vault-real":
        yield _real_vault_backend()
    else:
        emulator = TransitEmulator(token=f"hvs.{secrets.token_urlsafe(18)}")
        with emulator.serve() as addr:
            yield Backend(lambda: VaultTransitKeyProvider(addr, emulator.token, "coordinator"),
                          persistent=True,
                          secrets=lambda: [emulator.token.encode(), *emulator.key_material()])


def _leaks(exc: BaseException, material: Sequence[bytes]) -> list[str]:
    """Every form a key could take in text, found in the error's str, repr or details."""
    text = f"{exc}|{exc!r}|{getattr(exc, 'details', '')}"
    found = []
    for m in material:
        for form in (m.hex(), base64.b64encode(m).decode(), repr(m), str(list(m))):
            if form in text:
                found.append(form)
    return found


# -- the contract --------------------------------------------------------------------------

def test_round_trip(backend: Backend) -> None:
    p = backend.make()
    data_key = secrets.token_bytes(32)
    wrapped = p.wrap(data_key, CTX)
    assert wrapped.kek_id == p.current_kek()
    assert data_key not in wrapped.blob
    assert p.unwrap(wrapped, CTX) == data_key
    again = p.wrap(data_key, CTX)
    assert again.blob != wrapped.blob          # randomised: equal keys are not visible
    assert p.unwrap(again, CTX) == data_key


def test_other_context_fails(backend: Backend) -> None:
    p = backend.make()
    wrapped = p.wrap(secrets.token_bytes(32), CTX)
    with pytest.raises(KeyUnavailable) as caught:
        p.unwrap(wrapped, OTHER_CTX)
    assert caught.value.details["kek_id"] == wrapped.kek_id
    with pytest.raises(KeyUnavailable):
        p.unwrap(wrapped, b"")


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_tampered_blob_fails(backend: Backend, where: str) -> None:
    p = backend.make()
    wrapped = p.wrap(secrets.token_bytes(32), CTX)
    blob = bytearray(wrapped.blob)
    i = {"first": 0, "middle": len(blob) // 2, "last": len(blob) - 1}[where]
    blob[i] ^= 0x01
    with pytest.raises(KeyUnavailable):
        p.unwrap(WrappedKey(wrapped.kek_id, bytes(blob)), CTX)
    with pytest.raises(KeyUnavailable):
        p.unwrap(WrappedKey(wrapped.kek_id, wrapped.blob[:-1]), CTX)
    with pytest.raises(KeyUnavailable):
        p.unwrap(WrappedKey(wrapped.kek_id, b""), CTX)


def test_unknown_kek_id_fails(backend: Backend) -> None:
    p = backend.make()
    wrapped = p.wrap(secrets.token_bytes(32), CTX)
    for other in ("no-such-kek", wrapped.kek_id + "0"):
        with pytest.raises(KeyUnavailable) as caught:
            p.unwrap(WrappedKey(other, wrapped.blob), CTX)
        assert caught.value.details["kek_id"] == other


def test_rotate(backend: Backend) -> None:
    p = backend.make()
    if not backend.rotates:
        with pytest.raises(InvalidInput, match="COORDINATOR_KEK"):
            p.rotate()
        return
    old_key = secrets.token_bytes(32)
    old = p.wrap(old_key, CTX)
    new_id = p.rotate()
    assert new_id != old.kek_id
    assert p.current_kek() == new_id
    new_key = secrets.token_bytes(32)
    new = p.wrap(new_key, CTX)
    assert new.kek_id == new_id
    assert p.unwrap(old, CTX) == old_key
    assert p.unwrap(new, CTX) == new_key
    # the blob is bound to its KEK id: relabelling it under the other KEK fails
    with pytest.raises(KeyUnavailable):
        p.unwrap(WrappedKey(new_id, old.blob), CTX)


def test_retire(backend: Backend) -> None:
    p = backend.make()
    with pytest.raises(InvalidInput):
        p.retire(p.current_kek())
    if not backend.rotates:
        return
    old_key = secrets.token_bytes(32)
    old = p.wrap(old_key, CTX)
    p.rotate()
    kept = p.wrap(b"k" * 32, CTX)
    p.retire(old.kek_id)
    with pytest.raises(KeyUnavailable) as caught:
        p.unwrap(old, CTX)
    assert caught.value.details["kek_id"] == old.kek_id
    assert p.unwrap(kept, CTX) == b"k" * 32
    if backend.persistent:                    # another instance over the same storage
        with pytest.raises(KeyUnavailable):
            backend.make().unwrap(old, CTX)
    p.retire(old.kek_id)                      # again: nothing left to forget, no error
    with pytest.raises(InvalidInput):
        p.retire(p.current_kek())
    assert p.unwrap(kept, CTX) == b"k" * 32


def test_ids_stable_across_instances(backend: Backend) -> None:
    if not backend.persistent:
        pytest.skip("the in-memory fake has no storage to reopen")
    first = backend.make()
    wrapped = first.wrap(b"d" * 32, CTX)
    second = backend.make()
    assert second.current_kek() == first.current_kek() == wrapped.kek_id
    assert second.unwrap(wrapped, CTX) == b"d" * 32
    if backend.rotates:
        rotated = second.rotate()
        assert backend.make().current_kek() == rotated
        assert first.current_kek() == rotated      # the other instance sees it too
        assert first.unwrap(second.wrap(b"e" * 32, CTX), CTX) == b"e" * 32


def test_no_key_material_in_errors_or_repr(backend: Backend) -> None:
    p = backend.make()
    data_key = secrets.token_bytes(32)
    wrapped = p.wrap(data_key, CTX)
    material = [data_key, *backend.secrets()]
    errors: list[CoordinatorError] = []
    for attempt in (lambda: p.unwrap(wrapped, OTHER_CTX),
                    lambda: p.unwrap(WrappedKey(wrapped.kek_id, wrapped.blob[:-1]), CTX),
                    lambda: p.unwrap(WrappedKey("nope", wrapped.blob), CTX),
                    lambda: p.retire(p.current_kek())):
        with pytest.raises(CoordinatorError) as caught:
            attempt()
        errors.append(caught.value)
    assert all(not _leaks(e, material) for e in errors)
    text = repr(p) + str(p)
    for m in material:
        assert m.hex() not in text and base64.b64encode(m).decode() not in text


# -- the keyring file ----------------------------------------------------------------------

def test_keyring_created_on_first_use_with_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    p = LocalFileKeyProvider(data_dir)
    assert not data_dir.exists()              # construction touches nothing
    with pytest.raises(KeyUnavailable, match="no keyring"):
        p.unwrap(WrappedKey("file:0000000000000000", b"x" * 40), CTX)
    p.retire("file:0000000000000000")
    assert not (data_dir / KEYRING_FILE).exists()   # nor does a failed unwrap or a retire
    old = os.umask(0o000)                     # a careless umask does not widen it
    try:
        p.current_kek()
    finally:
        os.umask(old)
    assert (data_dir / KEYRING_FILE).stat().st_mode & 0o777 == 0o600
    p.rotate()
    assert (data_dir / KEYRING_FILE).stat().st_mode & 0o777 == 0o600
    assert sorted(f.name for f in data_dir.iterdir()) == [KEYRING_FILE, KEYRING_FILE + ".lock"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_refuses_a_keyring_others_may_read(tmp_path: Path, mode: int) -> None:
    p = LocalFileKeyProvider(tmp_path)
    wrapped = p.wrap(b"d" * 32, CTX)
    (tmp_path / KEYRING_FILE).chmod(mode)
    for attempt in (p.current_kek, lambda: p.unwrap(wrapped, CTX), p.rotate,
                    LocalFileKeyProvider(tmp_path).current_kek):
        with pytest.raises(KeyUnavailable, match="0600") as caught:
            attempt()
        assert caught.value.details["mode"] == f"{mode:04o}"
    (tmp_path / KEYRING_FILE).chmod(0o600)
    assert p.unwrap(wrapped, CTX) == b"d" * 32


@pytest.mark.parametrize("content", [b"", b"{", b'{"format": "other"}',
                                     b'{"format": "coordinator-kek-keyring/1", "current": "a",'
                                     b' "keys": {"a": "c2hvcnQ="}}'])
def test_refuses_a_broken_keyring(tmp_path: Path, content: bytes) -> None:
    fd = os.open(tmp_path / KEYRING_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(KeyUnavailable, match="not a valid keyring") as caught:
        LocalFileKeyProvider(tmp_path).wrap(b"d" * 32, CTX)
    assert "c2hvcnQ" not in str(caught.value)
    assert (tmp_path / KEYRING_FILE).read_bytes() == content     # left as it was


def _rotate_in_child(data_dir: str, start: mp.synchronize.Event, rounds: int,
                     out: mp.Queue[list[tuple[str, bytes]]]) -> None:
    p = LocalFileKeyProvider(Path(data_dir))
    start.wait()
    made = []
    for i in range(rounds):
        p.rotate()
        w = p.wrap(bytes([i]) * 32, CTX)
        made.append((w.kek_id, w.blob))
    out.put(made)


@pytest.mark.slow
def test_two_processes_rotating_keep_a_valid_keyring(tmp_path: Path) -> None:
    first = LocalFileKeyProvider(tmp_path).current_kek()
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    rounds, procs = 8, [ctx.Process(target=_rotate_in_child,
                                    args=(str(tmp_path), start, 8, out)) for _ in range(2)]
    for proc in procs:
        proc.start()
    start.set()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    p = LocalFileKeyProvider(tmp_path)
    doc = json.loads((tmp_path / KEYRING_FILE).read_text())
    assert len(doc["keys"]) == 1 + 2 * rounds     # no rotation was lost
    assert first in doc["keys"] and doc["current"] in doc["keys"]
    assert (tmp_path / KEYRING_FILE).stat().st_mode & 0o777 == 0o600
    for made in results:
        for i, (kek_id, blob) in enumerate(made):
            assert p.unwrap(WrappedKey(kek_id, blob), CTX) == bytes([i]) * 32
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]


def test_threads_rotating_keep_every_key(tmp_path: Path) -> None:
    p = LocalFileKeyProvider(tmp_path)
    wrapped: list[WrappedKey] = []

    def work() -> None:
        for _ in range(5):
            p.rotate()
            wrapped.append(p.wrap(b"t" * 32, CTX))
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.unwrap(w, CTX) == b"t" * 32 for w in wrapped)
    assert len(json.loads((tmp_path / KEYRING_FILE).read_text())["keys"]) == 21


# -- KEKs from the environment -------------------------------------------------------------

@pytest.mark.parametrize("value", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_env_kek_must_be_32_bytes_of_base64(value: str) -> None:
    with pytest.raises(InvalidInput, match=r"key-encryption key|base64") as caught:
        StaticKeyProvider.from_base64(value)
    assert "c2hvcnQ" not in str(caught.value)


def test_env_older_keys_still_unwrap() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    b64 = [base64.b64encode(k).decode() for k in (old, new)]
    before = StaticKeyProvider.from_base64(b64[0])
    wrapped = before.wrap(b"d" * 32, CTX)
    after = StaticKeyProvider.from_base64(f"{b64[1]}, {b64[0]}")
    assert after.current_kek() != wrapped.kek_id
    assert after.unwrap(wrapped, CTX) == b"d" * 32
    assert after.wrap(b"d" * 32, CTX).kek_id == after.current_kek()
    with pytest.raises(KeyUnavailable):
        StaticKeyProvider.from_base64(b64[1]).unwrap(wrapped, CTX)


# -- settings and the factory --------------------------------------------------------------

def test_factory_defaults_to_the_keyring_file(tmp_path: Path) -> None:
    p = build_key_provider(Settings(data_dir=tmp_path / "data"))
    assert isinstance(p, LocalFileKeyProvider)
    assert not (tmp_path / "data").exists()
    assert p.unwrap(p.wrap(b"d" * 32, CTX), CTX) == b"d" * 32
    assert (tmp_path / "data" / KEYRING_FILE).exists()


def test_factory_reads_the_kek_from_the_environment(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    kek = base64.b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("COORDINATOR_KEY_PROVIDER", "env")
    monkeypatch.setenv("COORDINATOR_KEK", kek)
    settings = Settings(data_dir=tmp_path)
    p = build_key_provider(settings)
    assert isinstance(p, StaticKeyProvider)
    assert p.unwrap(p.wrap(b"d" * 32, CTX), CTX) == b"d" * 32
    assert kek not in repr(settings) and kek not in str(settings.model_dump())
    assert not list(tmp_path.iterdir())
    monkeypatch.delenv("COORDINATOR_KEK")
    with pytest.raises(ValidationError, match="COORDINATOR_KEK"):
        Settings(data_dir=tmp_path)


def test_factory_loads_the_vault_adapter(tmp_path: Path) -> None:
    emulator = TransitEmulator(token=f"hvs.{secrets.token_urlsafe(18)}", mount="kv/transit")
    with emulator.serve() as addr:
        settings = Settings(data_dir=tmp_path, key_provider="vault", vault_addr=addr,
                            vault_token=emulator.token, vault_key="coord",
                            vault_mount="kv/transit")
        p = build_key_provider(settings)
        assert type(p).__module__ == "adapters.vault_transit"
        assert p.current_kek() == "vault:coord:v1"
        assert emulator.token not in repr(settings)


@pytest.mark.parametrize(("changes", "why"), [
    ({"vault_addr": None}, "vault_addr"),
    ({"vault_addr": "http://vault.example.no:8200"}, "https"),
    ({"vault_token": None}, "vault_token"),
    ({"vault_token": ""}, "vault_token"),
])
def test_vault_settings_are_checked(tmp_path: Path, changes: dict[str, object],
                                    why: str) -> None:
    good: dict[str, object] = {"key_provider": "vault", "vault_token": "hvs.token-value",
                               "kek": "a2VrLXZhbHVl", "vault_addr": "https://vault.example.no"}
    Settings(data_dir=tmp_path, **good)
    with pytest.raises(ValidationError, match=why) as caught:
        Settings(data_dir=tmp_path, **{**good, **changes})
    assert "token-value" not in str(caught.value)       # no secret beside the refusal
    assert "a2VrLXZhbHVl" not in str(caught.value)
