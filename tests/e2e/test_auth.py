"""Authentication end to end: bearer JWTs through the real app on a migrated SQLite file.

Tokens are built here with PyJWT (or by hand, for the malicious ones) from keys the test
holds, never with the code under test's minting. The JWKS issuer is a real HTTP server on
loopback. ``coordinator dev-token`` runs as the installed console script.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from coordinator.bootstrap import build
from coordinator.cli import app as cli_app
from coordinator.config import Settings, TrustedIssuer
from coordinator.crypto.signing import dev_key_path, load_or_create_dev_key
from coordinator.http.app import create_app
from coordinator.http.auth import DEV_ISSUER, USER_ROLES, Authenticator
from coordinator.testing import FakeClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")     # Starlette prefers httpx2; the project pins httpx
    from fastapi.testclient import TestClient

CONSOLE_SCRIPT = Path(sys.executable).with_name("coordinator")
PROBLEM = "application/problem+json"
AUDIENCE = "coordinator-api"
LIMIT = 5
WINDOW = 60
ME = "/api/v1/me"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    head = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{head}.{b64(sign(head.encode())) if sign else ''}"


def settings_for(tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path / "data", "dev_issuer_enabled": True,
                              "api_audience": AUDIENCE, "auth_failure_limit": LIMIT,
                              "auth_failure_window_seconds": WINDOW, **extra}
    return Settings(**values)


class DevKey:
    """The development issuer's key as the test reads it back from the key file."""

    def __init__(self, data_dir: Path) -> None:
        load_or_create_dev_key(data_dir)
        pem = dev_key_path(data_dir).read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        self.private = key

    def claims(self, now: float, **overrides: Any) -> dict[str, Any]:
        base = {"iss": DEV_ISSUER, "aud": AUDIENCE, "sub": "veileder-1", "role": "nav_veileder",
                "org": "974760673", "pilot": "ringsaker", "iat": int(now), "exp": int(now) + 600}
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def token(self, now: float, key: Any = None, **overrides: Any) -> str:
        return jwt.encode(self.claims(now, **overrides), key or self.private, algorithm="EdDSA")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def dev(settings: Settings) -> DevKey:
    return DevKey(settings.data_dir)


@pytest.fixture
def app(sqlite_engine: Engine, clock: FakeClock, settings: Settings) -> FastAPI:
    return create_app(build(engine=sqlite_engine, clock=clock),
                      authenticator=Authenticator.from_settings(settings, clock=clock))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: Any, *, token_given: bool = True) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"] == "/problems/unauthorized"
    assert body["detail"] == "A valid bearer token is required."    # the same for every cause
    assert body["request_id"] == response.headers["x-request-id"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is token_given


# -- the development issuer -------------------------------------------------------------------
def test_a_valid_dev_token_says_who_the_caller_is(client: TestClient, dev: DevKey,
                                                  clock: FakeClock) -> None:
    now = clock.now().timestamp()
    response = client.get(ME, headers=bearer(dev.token(now)))
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "veileder-1", "role": "nav_veileder",
                               "org": "974760673", "pilot": "ringsaker"}
    bare = client.get(ME, headers=bearer(dev.token(now, org=None, pilot=None, role="bruker")))
    assert bare.json() == {"sub": "veileder-1", "role": "bruker", "org": None, "pilot": None}


@pytest.mark.parametrize("role", sorted(USER_ROLES))
def test_every_user_role_is_accepted(client: TestClient, dev: DevKey, clock: FakeClock,
                                     role: str) -> None:
    response = client.get(ME, headers=bearer(dev.token(clock.now().timestamp(), role=role)))
    assert response.status_code == 200
    assert response.json()["role"] == role


def test_the_leeway_is_small(client: TestClient, dev: DevKey, clock: FakeClock) -> None:
    now = clock.now().timestamp()
    within = dev.token(now, iat=int(now) - 600, exp=int(now) - 20)
    assert client.get(ME, headers=bearer(within)).status_code == 200
    beyond = dev.token(now, iat=int(now) - 600, exp=int(now) - 40)
    assert_unauthorized(client.get(ME, headers=bearer(beyond)))


def malicious_tokens(dev: DevKey, now: float) -> dict[str, str]:
    public_pem = dev.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = dev.claims(now)
    return {
        "malformed": "not-a-jwt",
        "three garbage parts": "abc.def.ghi",
        "expired": dev.token(now, iat=int(now) - 7200, exp=int(now) - 3600),
        "issued in the future": dev.token(now, iat=int(now) + 3600, exp=int(now) + 7200),
        "not yet valid (nbf)": dev.token(now, nbf=int(now) + 3600),
        "wrong issuer": dev.token(now, iss="https://idp.example.com/"),
        "wrong audience": dev.token(now, aud="someone-else"),
        "no exp": dev.token(now, exp=None),
        "no iat": dev.token(now, iat=None),
        "no sub": dev.token(now, sub=None),
        "empty sub": dev.token(now, sub=""),
        "unknown role": dev.token(now, role="sjef"),
        "no role": dev.token(now, role=None),
        "bad org": dev.token(now, org="12345"),
        "signed by another key": dev.token(now, key=ed25519.Ed25519PrivateKey.generate()),
        "alg none": hand_made({"alg": "none", "typ": "JWT"}, claims),
        "HS256 with the public key": hand_made(
            {"alg": "HS256", "typ": "JWT"}, claims,
            lambda data: hmac.new(public_pem, data, hashlib.sha256).digest()),
        "tampered claims": tampered(dev.token(now), {**claims, "role": "auditor"}),
    }


def tampered(token: str, claims: dict[str, Any]) -> str:
    head, _, sig = token.split(".")
    return f"{head}.{b64(json.dumps(claims).encode())}.{sig}"


def test_every_bad_token_is_a_generic_401(app: FastAPI, dev: DevKey, clock: FakeClock,
                                          caplog: pytest.LogCaptureFixture) -> None:
    reasons: dict[str, list[str | None]] = {}
    for i, (name, token) in enumerate(malicious_tokens(dev, clock.now().timestamp()).items()):
        caplog.clear()
        # One client address per token, so the failure limit stays out of the way.
        with TestClient(app, client=(f"192.0.2.{i + 1}", 40000)) as c:
            response = c.get(ME, headers=bearer(token))
        assert response.status_code == 401, name
        assert_unauthorized(response)
        reasons[name] = [getattr(r, "reason", None) for r in caplog.records
                         if r.name == "coordinator.http.auth"]
    assert reasons == {name: [why] for name, why in WHY.items()}


# What the server log says for each (the response says the same thing for all of them).
WHY = {
    "malformed": "malformed token (DecodeError)",
    "three garbage parts": "malformed token (DecodeError)",
    "expired": "expired", "issued in the future": "issued in the future",
    "not yet valid (nbf)": "not yet valid", "wrong issuer": "untrusted issuer",
    "wrong audience": "wrong audience", "no exp": "missing required claim",
    "no iat": "missing required claim", "no sub": "missing required claim",
    "empty sub": "bad sub claim", "unknown role": "no single known role",
    "no role": "no single known role", "bad org": "bad org claim",
    "signed by another key": "bad signature", "alg none": "algorithm not allowed",
    "HS256 with the public key": "algorithm not allowed", "tampered claims": "bad signature",
}


def test_a_missing_or_non_bearer_credential_is_401(client: TestClient) -> None:
    assert_unauthorized(client.get(ME), token_given=False)
    assert_unauthorized(client.get(ME, headers={"Authorization": "Basic dXNlcjpwdw=="}),
                        token_given=False)


def test_the_log_has_the_reason_but_never_the_token(client: TestClient, dev: DevKey,
                                                     clock: FakeClock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    token = dev.token(clock.now().timestamp(), aud="someone-else")
    with caplog.at_level(logging.INFO):
        assert_unauthorized(client.get(ME, headers=bearer(token)))
    records = [r for r in caplog.records if r.name == "coordinator.http.auth"]
    assert [getattr(r, "reason", None) for r in records] == ["wrong audience"]
    signature = token.rsplit(".", 1)[1]
    for record in caplog.records:
        assert signature not in str(record.__dict__)


def test_a_disabled_dev_issuer_accepts_no_dev_tokens(sqlite_engine: Engine, clock: FakeClock,
                                                     tmp_path: Path, dev: DevKey) -> None:
    off = settings_for(tmp_path, dev_issuer_enabled=False)
    app = create_app(build(engine=sqlite_engine, clock=clock),
                     authenticator=Authenticator.from_settings(off, clock=clock))
    with TestClient(app) as c:
        assert_unauthorized(c.get(ME, headers=bearer(dev.token(clock.now().timestamp()))))


def test_the_dev_issuer_defaults_on_only_for_the_embedded_database(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).dev_issuer_active
    pg = Settings(data_dir=tmp_path, database_url="postgresql://u@db.example/coordinator")
    assert not pg.dev_issuer_active
    assert Settings(database_url=pg.database_url, dev_issuer_enabled=True).dev_issuer_active


def test_pilots_and_health_stay_public(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/api/v1/pilots").status_code == 200


# -- the failure limit ------------------------------------------------------------------------
def test_failed_auth_is_limited_per_address_and_the_limit_resets(
        app: FastAPI, client: TestClient, dev: DevKey, clock: FakeClock) -> None:
    for _ in range(LIMIT):
        assert_unauthorized(client.get(ME, headers=bearer("garbage")))
    limited = client.get(ME, headers=bearer(dev.token(clock.now().timestamp())))
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith(PROBLEM)
    assert limited.json()["type"] == "/problems/too-many-requests"
    assert 1 <= int(limited.headers["retry-after"]) <= WINDOW
    assert client.get(ME).status_code == 429                     # token-less, too
    assert client.get("/api/v1/pilots").status_code == 200       # public endpoints are not
    with TestClient(app, client=("192.0.2.7", 40000)) as other:  # another address is not
        assert_unauthorized(other.get(ME, headers=bearer("garbage")))
    clock.advance(seconds=int(limited.headers["retry-after"]))
    fresh = client.get(ME, headers=bearer(dev.token(clock.now().timestamp())))
    assert fresh.status_code == 200


def test_token_less_requests_count_towards_the_limit(client: TestClient) -> None:
    for _ in range(LIMIT):
        assert_unauthorized(client.get(ME), token_given=False)
    assert client.get(ME).status_code == 429


def test_successful_requests_do_not_count(client: TestClient, dev: DevKey,
                                          clock: FakeClock) -> None:
    token = dev.token(clock.now().timestamp())
    for _ in range(LIMIT * 3):
        assert client.get(ME, headers=bearer(token)).status_code == 200


# -- issuers with their own keys --------------------------------------------------------------
class Jwks:
    """A JWKS endpoint on loopback that counts how often it is fetched."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.body = json.dumps({"keys": keys}).encode()
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(jwks.body)))
                self.end_headers()
                self.wfile.write(jwks.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    def __enter__(self) -> Jwks:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


IDP = "https://login.idp.example/tenant/v2.0"


@pytest.fixture
def es_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def jwks(es_key: ec.EllipticCurvePrivateKey) -> Iterator[Jwks]:
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(es_key.public_key()))
    with Jwks([{**public, "kid": "idp-1", "use": "sig", "alg": "ES256"}]) as server:
        yield server


def idp_token(key: Any, now: float, kid: str = "idp-1", alg: str = "ES256",
              **overrides: Any) -> str:
    claims = {"iss": IDP, "aud": "api://coordinator", "sub": "oid-42",
              "roles": ["nav_veileder"], "iat": int(now), "exp": int(now) + 600, **overrides}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def idp_app(engine: Engine, clock: FakeClock, tmp_path: Path, issuer: TrustedIssuer
            ) -> FastAPI:
    settings = settings_for(tmp_path, trusted_issuers=[issuer])
    return create_app(build(engine=engine, clock=clock),
                      authenticator=Authenticator.from_settings(settings, clock=clock))


def test_a_jwks_issuer_is_fetched_lazily_cached_and_trusted(
        sqlite_engine: Engine, clock: FakeClock, tmp_path: Path, jwks: Jwks,
        es_key: ec.EllipticCurvePrivateKey) -> None:
    issuer = TrustedIssuer(issuer=IDP, audience="api://coordinator", jwks_url=jwks.url,
                           algorithms=["ES256"], role_claim="roles")
    app = idp_app(sqlite_engine, clock, tmp_path, issuer)
    assert jwks.fetches == 0                        # nothing is fetched before a token comes
    now = clock.now().timestamp()
    with TestClient(app) as c:
        for _ in range(3):
            response = c.get(ME, headers=bearer(idp_token(es_key, now)))
            assert response.status_code == 200, response.text
        assert response.json() == {"sub": "oid-42", "role": "nav_veileder", "org": None,
                                   "pilot": None}
        assert jwks.fetches == 1
        other = ec.generate_private_key(ec.SECP256R1())
        assert_unauthorized(c.get(ME, headers=bearer(idp_token(other, now))))
        assert_unauthorized(c.get(ME, headers=bearer(idp_token(es_key, now, aud="other"))))
        two_roles = idp_token(es_key, now, roles=["nav_veileder", "auditor"])
        assert_unauthorized(c.get(ME, headers=bearer(two_roles)))


def test_a_jwks_issuer_refuses_algorithms_it_was_not_given(
        sqlite_engine: Engine, clock: FakeClock, tmp_path: Path, jwks: Jwks,
        es_key: ec.EllipticCurvePrivateKey) -> None:
    issuer = TrustedIssuer(issuer=IDP, audience="api://coordinator", jwks_url=jwks.url,
                           algorithms=["RS256"], role_claim="roles")
    with TestClient(idp_app(sqlite_engine, clock, tmp_path, issuer)) as c:
        assert_unauthorized(c.get(ME, headers=bearer(idp_token(es_key,
                                                                clock.now().timestamp()))))


def test_an_unreachable_jwks_is_503_not_401(sqlite_engine: Engine, clock: FakeClock,
                                            tmp_path: Path,
                                            es_key: ec.EllipticCurvePrivateKey) -> None:
    with Jwks([]) as gone:
        url = gone.url                               # a port nothing listens on any more
    issuer = TrustedIssuer(issuer=IDP, audience="api://coordinator", jwks_url=url,
                           algorithms=["ES256"], role_claim="roles")
    with TestClient(idp_app(sqlite_engine, clock, tmp_path, issuer)) as c:
        response = c.get(ME, headers=bearer(idp_token(es_key, clock.now().timestamp())))
    assert response.status_code == 503
    assert response.json()["type"] == "/problems/authentication-unavailable"


def test_an_issuer_with_a_local_public_key(sqlite_engine: Engine, clock: FakeClock,
                                           tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "idp.pub.pem"
    pem.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    issuer = TrustedIssuer(issuer=IDP, audience="api://coordinator", public_key_file=pem,
                           algorithms=["RS256"], role_claim="roles")
    now = clock.now().timestamp()
    with TestClient(idp_app(sqlite_engine, clock, tmp_path, issuer)) as c:
        ok = c.get(ME, headers=bearer(idp_token(key, now, alg="RS256", org="974760673")))
        assert ok.json()["org"] == "974760673"
        forged = hand_made({"alg": "HS256", "typ": "JWT"},
                           jwt.decode(idp_token(key, now, alg="RS256"),
                                      options={"verify_signature": False}),
                           lambda data: hmac.new(pem.read_bytes(), data,
                                                 hashlib.sha256).digest())
        assert_unauthorized(c.get(ME, headers=bearer(forged)))


@pytest.mark.parametrize("config", [
    {"jwks_url": "https://idp.example/jwks", "algorithms": ["HS256"]},
    {"jwks_url": "https://idp.example/jwks", "algorithms": ["none"]},
    {"jwks_url": "http://idp.example/jwks"},                         # plain http off loopback
    {},                                                              # no key source
    {"jwks_url": "https://idp.example/jwks", "public_key_file": "k.pem"},   # two
])
def test_issuer_settings_refuse_unsafe_configurations(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TrustedIssuer(issuer=IDP, audience="api://coordinator", **config)


def test_trusted_issuers_come_from_the_environment_as_json(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    issuers = [{"issuer": IDP, "audience": "api://coordinator",
                "jwks_url": "https://login.idp.example/keys", "algorithms": ["RS256"]}]
    monkeypatch.setenv("COORDINATOR_TRUSTED_ISSUERS", json.dumps(issuers))
    monkeypatch.setenv("COORDINATOR_DEV_ISSUER_ENABLED", "false")
    settings = Settings(data_dir=tmp_path)
    assert [i.jwks_url for i in settings.trusted_issuers] == ["https://login.idp.example/keys"]
    assert not settings.dev_issuer_active


# -- coordinator dev-token --------------------------------------------------------------------
def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    env.update(COORDINATOR_DATA_DIR=str(data_dir), NO_COLOR="1")
    return subprocess.run([str(CONSOLE_SCRIPT), *args], capture_output=True,  # noqa: S603
                          text=True, env=env, timeout=60, check=False)


def test_dev_token_round_trip(sqlite_engine: Engine, tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    result = run_cli("dev-token", "--role", "fastlege", "--sub", "lege-7", "--org",
                     "974760673", "--pilot", "ringsaker", "--ttl-minutes", "5",
                     data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == f"{token}\n"                # only the token on stdout
    key_file = dev_key_path(data_dir)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() not in result.stdout + result.stderr
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == timedelta(minutes=5).total_seconds()
    # The app on the wall clock (the CLI's), trusting the same data directory.
    authenticator = Authenticator.from_settings(settings_for(tmp_path, data_dir=data_dir))
    with TestClient(create_app(build(engine=sqlite_engine), authenticator=authenticator)) as c:
        response = c.get(ME, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "lege-7", "role": "fastlege", "org": "974760673",
                               "pilot": "ringsaker"}
    before = key_file.read_bytes()
    again = run_cli("dev-token", "--role", "bruker", "--sub", "p-1", data_dir=data_dir)
    assert again.returncode == 0
    assert key_file.read_bytes() == before                  # the key file is reused
    assert jwt.get_unverified_header(again.stdout.strip()) == jwt.get_unverified_header(token)


def invoke(*args: str, data_dir: Path, **env: str) -> Result:
    """The CLI in-process (its one-line error handling runs in each subcommand)."""
    environ: dict[str, str | None] = {"COORDINATOR_DATA_DIR": str(data_dir),
                                      "COORDINATOR_DEBUG": None, **env}
    return CliRunner().invoke(cli_app, list(args), env=environ)


@pytest.mark.parametrize(("args", "says"), [
    (("--role", "sjef", "--sub", "x"), "ukjent rolle «sjef»"),
    (("--role", "fastlege", "--sub", "x", "--org", "12"), "organisasjonsnummer"),
    (("--role", "fastlege", "--sub", "x", "--pilot", "atlantis"), "fant ingen pilot"),
    (("--role", "fastlege", "--sub", " "), "--sub"),
])
def test_dev_token_refuses_bad_arguments_in_one_bokmal_line(
        tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    result = invoke("dev-token", *args, data_dir=tmp_path)
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Feil: "), result.stderr
    assert says in lines[0]
    assert not dev_key_path(tmp_path).exists()


def test_dev_token_names_the_valid_roles(tmp_path: Path) -> None:
    result = invoke("dev-token", "--role", "sjef", "--sub", "x", data_dir=tmp_path)
    assert all(role in result.stderr for role in USER_ROLES)


def test_dev_token_refuses_a_bad_ttl_through_the_console_script(tmp_path: Path) -> None:
    result = run_cli("dev-token", "--role", "bruker", "--sub", "p", "--ttl-minutes", "0",
                     data_dir=tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.startswith("Feil: ") and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_dev_token_is_refused_when_the_dev_issuer_is_off(tmp_path: Path) -> None:
    result = invoke("dev-token", "--role", "bruker", "--sub", "p", data_dir=tmp_path,
                    COORDINATOR_DEV_ISSUER_ENABLED="false")
    assert result.exit_code != 0
    assert result.stdout == ""
    assert "utviklingsutstederen er slått av" in result.stderr
    assert not dev_key_path(tmp_path).exists()


def test_racing_creators_agree_on_one_dev_key(tmp_path: Path) -> None:
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        public = load_or_create_dev_key(tmp_path).public_key()
        keys.append(public.public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [dev_key_path(tmp_path).name]
    assert stat.S_IMODE(dev_key_path(tmp_path).stat().st_mode) == 0o600
