"""Authentication: who is calling, from an OAuth2 bearer JWT.

``Authenticator`` accepts tokens from the configured trusted issuers (``Settings.
trusted_issuers``: JWKS URL or a local public key, asymmetric algorithms only) and, when
``Settings.dev_issuer_active``, from the local development issuer (``coordinator
dev-token``). A token must carry ``iss``, ``aud``, ``sub``, ``exp`` and ``iat``, and a
``role`` among ``USER_ROLES``; ``org`` and ``pilot`` are optional. Times are checked
against the authenticator's clock with a small leeway.

Endpoints ask for the caller with ``CurrentActor`` (or ``CurrentPrincipal``). Any failure
is a 401 ``/problems/unauthorized`` with one generic detail; the reason goes to the server
log only, never the token. Token-less and failed requests count per client address: over
the limit the answer is 429 with ``Retry-After`` (see ``ratelimit``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from coordinator.cases.model import Actor
from coordinator.clock import SystemClock
from coordinator.config import Settings, TrustedIssuer
from coordinator.crypto import signing
from coordinator.http.errors import PROBLEM_JSON, Problem, problem_response, request_id_of
from coordinator.http.ratelimit import FailureLimiter
from coordinator.http.schemas import ProblemRead
from coordinator.ports import Clock

USER_ROLES = frozenset({
    "nav_veileder", "jobbspesialist", "brobygger", "kognitiv_terapeut", "rph_behandler",
    "fastlege", "prosjektleder", "auditor", "bruker",
})
DEV_ISSUER = "urn:coordinator:dev-issuer"
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
MAX_TOKEN_CHARS = 8192
_ORG = re.compile(r"^[0-9]{9}$")
_PILOT = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_REALM = 'Bearer realm="coordinator"'
log = logging.getLogger("coordinator.http.auth")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: the actor the core sees, plus the pilot the token names."""

    actor: Actor
    pilot: str | None
    issuer: str


@dataclass(frozen=True)
class Issuer:
    """One trusted issuer, ready to verify: its keys, audience, algorithms and claim names."""

    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    keys: signing.KeySource
    role_claim: str = "role"
    org_claim: str = "org"
    pilot_claim: str = "pilot"

    @classmethod
    def configured(cls, config: TrustedIssuer, *, jwks_cache_seconds: float = 300) -> Issuer:
        keys: signing.KeySource
        if config.jwks_url is not None:
            keys = signing.JwksKeys(config.jwks_url, lifespan=jwks_cache_seconds)
        else:
            assert config.public_key_file is not None  # noqa: S101 - the model guarantees it
            keys = signing.StaticKey(signing.load_public_key(config.public_key_file))
        return cls(config.issuer, config.audience, tuple(config.algorithms), keys,
                   config.role_claim, config.org_claim, config.pilot_claim)


class Unauthorized(Exception):
    """Authentication failed; ``reason`` is for the log, never the response."""

    def __init__(self, reason: str, *, token_given: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.token_given = token_given


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class AuthUnavailable(Exception):
    """An issuer's keys could not be had; the token may well be good."""


def _text(claims: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None,
          ) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 200:
        raise signing.TokenRejected(f"bad {name} claim")
    if pattern is not None and not pattern.match(value):
        raise signing.TokenRejected(f"bad {name} claim")
    return value


def _role(claims: Mapping[str, Any], name: str) -> str:
    """The one known role in the claim (a string, or a list such as Azure AD's ``roles``)."""
    value = claims.get(name)
    values = value if isinstance(value, list) else [value]
    known = {v for v in values if isinstance(v, str) and v in USER_ROLES}
    if len(known) != 1:
        raise signing.TokenRejected("no single known role")
    return known.pop()


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise signing.TokenRejected(f"{name} is not a number")
    return float(value)


@dataclass
class Authenticator:
    """Turns a bearer token into a ``Principal``; counts failures per client."""

    issuers: Sequence[Issuer]
    clock: Clock
    limiter: FailureLimiter
    leeway: float = 30
    _by_issuer: dict[str, Issuer] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_issuer = {i.issuer: i for i in self.issuers}
        if len(self._by_issuer) != len(self.issuers):
            raise ValueError("two trusted issuers share one `iss`")

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Authenticator:
        """The issuers ``settings`` trust. Reads local key files; fetches nothing."""
        clock = clock or SystemClock()
        issuers = [Issuer.configured(c, jwks_cache_seconds=settings.jwks_cache_seconds)
                   for c in settings.trusted_issuers]
        if settings.dev_issuer_active:
            issuers.append(dev_issuer(settings))
        limiter = FailureLimiter(clock, limit=settings.auth_failure_limit,
                                 window=settings.auth_failure_window_seconds)
        return cls(issuers, clock, limiter, leeway=settings.auth_leeway_seconds)

    def verify(self, token: str) -> Principal:
        """Raises: Unauthorized, AuthUnavailable."""
        try:
            if len(token) > MAX_TOKEN_CHARS:
                raise signing.TokenRejected("token too long")
            issuer = self._by_issuer.get(signing.unverified_issuer(token))
            if issuer is None:
                raise signing.TokenRejected("untrusted issuer")
            claims = signing.decode_verified(
                token, issuer.keys, algorithms=issuer.algorithms, issuer=issuer.issuer,
                audience=issuer.audience, required=REQUIRED_CLAIMS)
            self._check_times(claims)
            return self._principal(issuer, claims)
        except signing.TokenRejected as exc:
            raise Unauthorized(exc.reason) from None
        except signing.KeysUnavailable as exc:
            raise AuthUnavailable(str(exc)) from None

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self.clock.now().timestamp()
        if _number(claims, "exp") <= now - self.leeway:
            raise signing.TokenRejected("expired")
        if _number(claims, "iat") > now + self.leeway:
            raise signing.TokenRejected("issued in the future")
        if "nbf" in claims and _number(claims, "nbf") > now + self.leeway:
            raise signing.TokenRejected("not yet valid")

    @staticmethod
    def _principal(issuer: Issuer, claims: Mapping[str, Any]) -> Principal:
        sub = _text(claims, "sub")
        if sub is None:
            raise signing.TokenRejected("no sub")
        actor = Actor(id=sub, role=_role(claims, issuer.role_claim),
                      org=_text(claims, issuer.org_claim, _ORG))
        return Principal(actor, _text(claims, issuer.pilot_claim, _PILOT), issuer.issuer)

    def authenticate(self, client: str, token: str | None) -> Principal:
        """``verify`` for a request from ``client``, with the failure limit.

        Raises: RateLimited, Unauthorized, AuthUnavailable."""
        retry_after = self.limiter.retry_after(client)
        if retry_after is not None:
            raise RateLimited(retry_after)
        try:
            if token is None:
                raise Unauthorized("no bearer token", token_given=False)
            return self.verify(token)
        except Unauthorized:
            self.limiter.record_failure(client)
            raise


def dev_issuer(settings: Settings) -> Issuer:
    """The local development issuer, whose key lives in ``settings.data_dir``."""
    return Issuer(DEV_ISSUER, settings.api_audience, (signing.DEV_ALGORITHM,),
                  signing.DevIssuerKeys(settings.data_dir))


def dev_claims(*, sub: str, role: str, audience: str, now: float, ttl_seconds: int,
               org: str | None = None, pilot: str | None = None) -> dict[str, Any]:
    """The claims of a development token (checked like any other token's when used)."""
    claims: dict[str, Any] = {"iss": DEV_ISSUER, "aud": audience, "sub": sub, "role": role,
                              "iat": int(now), "exp": int(now) + ttl_seconds}
    if org is not None:
        claims["org"] = org
    if pilot is not None:
        claims["pilot"] = pilot
    return claims


# -- FastAPI ------------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="An OAuth2 access token (JWT)")


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def authenticate_principal(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        authenticator: Annotated[Authenticator, Depends(get_authenticator)]) -> Principal:
    client = request.client.host if request.client else "unknown"
    token = credentials.credentials if credentials else None
    try:
        principal = authenticator.authenticate(client, token)
    except (Unauthorized, RateLimited, AuthUnavailable) as exc:
        level = logging.INFO if isinstance(exc, RateLimited) else logging.WARNING
        log.log(level, "authentication failed", extra={
            "request_id": request_id_of(request), "client": client,
            "reason": getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"})
        raise
    request.state.principal = principal
    return principal


def authenticate(principal: Annotated[Principal, Depends(authenticate_principal)]) -> Actor:
    return principal.actor


CurrentPrincipal = Annotated[Principal, Depends(authenticate_principal)]
CurrentActor = Annotated[Actor, Depends(authenticate)]

UNAUTHORIZED = Problem(401, "unauthorized", "A valid bearer token is required.",
                       title="Unauthorized")
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemRead, "content": {PROBLEM_JSON: {}}, "description": text}
    for status, text in ((401, "No valid bearer token"),
                         (429, "Too many requests without a valid token from this address"),
                         (503, "The token's issuer cannot be reached to check it"))}


def _respond(request: Request, problem: Problem, headers: Mapping[str, str]) -> JSONResponse:
    return problem_response(problem, instance=request.url.path,
                            request_id=request_id_of(request), headers=headers)


async def _unauthorized(request: Request, exc: Exception) -> JSONResponse:
    given = isinstance(exc, Unauthorized) and exc.token_given
    challenge = f'{_REALM}, error="invalid_token"' if given else _REALM
    return _respond(request, UNAUTHORIZED, {"WWW-Authenticate": challenge})


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    retry = exc.retry_after if isinstance(exc, RateLimited) else 60
    problem = Problem(429, "too-many-requests",
                      "Too many requests without a valid token; try again later.",
                      title="Too many requests")
    return _respond(request, problem, {"Retry-After": str(retry)})


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    problem = Problem(503, "authentication-unavailable",
                      "Tokens cannot be checked right now; try again shortly.",
                      title="Service unavailable")
    return _respond(request, problem, {"Retry-After": "30"})


def install(app: FastAPI, authenticator: Authenticator) -> None:
    """Make ``authenticator`` the app's and answer its failures as problem+json."""
    app.state.authenticator = authenticator
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(AuthUnavailable, _unavailable)
