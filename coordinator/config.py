"""Settings from the environment (``COORDINATOR_*``). Built by the caller, never at import."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from coordinator.crypto import ASYMMETRIC_ALGORITHMS


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TrustedIssuer(BaseModel):
    """An OAuth2/OIDC issuer whose bearer JWTs the API accepts (Azure AD, TokenX, HelseID,
    ID-porten, ...). Exactly one of ``jwks_url`` and ``public_key_file``."""

    issuer: str = Field(min_length=1, description="The exact `iss` of its tokens")
    audience: str = Field(min_length=1, description="The `aud` its tokens must carry for us")
    jwks_url: str | None = Field(default=None, description="https URL of its JWKS")
    public_key_file: Path | None = Field(default=None, description="A PEM public key")
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"], min_length=1)
    role_claim: str = "role"
    org_claim: str = "org"
    pilot_claim: str = "pilot"

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.jwks_url is None) == (self.public_key_file is None):
            raise ValueError("give exactly one of jwks_url and public_key_file")
        bad = sorted(set(self.algorithms) - ASYMMETRIC_ALGORITHMS)
        if bad:
            raise ValueError(f"algorithms not allowed for an issuer: {bad} "
                             f"(allowed: {sorted(ASYMMETRIC_ALGORITHMS)})")
        if self.jwks_url is not None:
            url = urlsplit(self.jwks_url)
            if url.scheme != "https" and not (url.scheme == "http"
                                              and _is_loopback(url.hostname)):
                raise ValueError("jwks_url must be https (http only on loopback)")
        return self


# Synthetic GP offices (first digit 2-5: never a real organisation number) for the demo,
# the tests and development. Production sets COORDINATOR_REFERRAL_ORGANISATIONS.
DEMO_REFERRAL_ORGANISATIONS = {
    "200000013": "ha", "300000029": "lillestrom", "400000034": "ringsaker",
    "500000058": "stovner",
}


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting must not print the secrets beside it
    model_config = SettingsConfigDict(env_prefix="COORDINATOR_", extra="ignore",
                                      hide_input_in_errors=True)

    data_dir: Path = Field(default=Path("var"),
                           description="Where the embedded database and key files live")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite in data_dir. A postgresql:// URL works too",
    )
    pool_size: int = Field(default=5, ge=1, le=100)

    # -- authentication (docs/security.md) ------------------------------------------------
    trusted_issuers: list[TrustedIssuer] = Field(
        default_factory=list,
        description="Issuers whose bearer JWTs are accepted (JSON list in the environment)")
    dev_issuer_enabled: bool | None = Field(
        default=None,
        description="Trust the local development issuer (dev-token). Default: on only for "
                    "the embedded SQLite database; production turns it off")
    api_audience: str = Field(default="coordinator-api", min_length=1,
                              description="The audience the development issuer puts in tokens")
    auth_leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwks_cache_seconds: int = Field(default=300, ge=10, le=86400)
    auth_failure_limit: int = Field(
        default=20, ge=1, description="Token-less or failed-auth requests per client IP ...")
    auth_failure_window_seconds: int = Field(default=60, ge=1, le=3600,
                                             description="... within this many seconds")

    # -- referrals (docs/referrals.md) ------------------------------------------------------
    referral_organisations: dict[str, str] = Field(
        default_factory=lambda: dict(DEMO_REFERRAL_ORGANISATIONS),
        description="Organisation number of a referring GP office -> pilot key (JSON object)")
    allow_synthetic_identifiers: bool | None = Field(
        default=None,
        description="Accept synthetic (test population) national ids. Default: on only for "
                    "the embedded SQLite database")
    http_extensions: list[str] = Field(
        default_factory=lambda: ["adapters.fhir.http:install"],
        description="'module:function' installers called with (app, coordinator, settings)")

    @property
    def synthetic_identifiers_allowed(self) -> bool:
        if self.allow_synthetic_identifiers is not None:
            return self.allow_synthetic_identifiers
        return self.resolved_database_url.startswith("sqlite")
    # -- reminders (docs/reminders.md) -----------------------------------------------------
    public_base_url: str = Field(default="http://127.0.0.1:8000",
                                 description="Base of the links in reminders")
    smtp_host: str | None = Field(default=None,
                                  description="SMTP server; unset: no e-mail, in-app only")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_sender: str = "ikke-svar@arbeid-og-helse.invalid"
    smtp_recipient_domain: str = Field(
        default="localhost", description="Domain for actor ids that are not addresses")
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    email_notifier: str = Field(default="adapters.smtp_email:SmtpNotifier",
                                description="Import path of the e-mail adapter")
    worker_tick_seconds: float = Field(default=5.0, gt=0, le=3600)
    worker_batch_size: int = Field(default=200, ge=1, le=5000)
    worker_lease_seconds: float = Field(default=60.0, gt=0, le=86400)
    worker_max_attempts: int = Field(default=8, ge=1, le=100)
    checkpoint_every_minutes: float = Field(
        default=60.0, ge=0, le=10080,
        description="The worker signs an audit checkpoint this often when events were "
                    "appended (docs/audit.md); 0: never")
    # -- outbound Nav events (docs/referrals.md) -------------------------------------------
    nav_webhook_url: str | None = Field(
        default=None, description="Where Nav events are POSTed; unset: no Nav events")
    nav_webhook_secret: str | None = Field(
        default=None, repr=False, description="HMAC-SHA256 key shared with the receiver")
    nav_webhook_notifier: str = Field(default="adapters.nav_webhook:WebhookNotifier",
                                      description="Import path of the webhook adapter")

    # -- key-encryption keys for envelope encryption (docs/key-providers.md) ---------------
    key_provider: Literal["file", "env", "vault"] = Field(
        default="file",
        description="Who keeps the key-encryption keys: a 0600 keyring file in data_dir, "
                    "COORDINATOR_KEK, or Vault's transit engine")
    kek: SecretStr | None = Field(
        default=None,
        description="key_provider=env: base64 of 32-byte keys, comma-separated, current first")
    vault_addr: str | None = Field(default=None, description="key_provider=vault: Vault's URL")
    vault_token: SecretStr | None = Field(default=None, description="A Vault token (see docs)")
    vault_key: str = Field(default="coordinator", description="The transit key's name")
    vault_mount: str = Field(default="transit", description="Where transit is mounted")
    vault_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    vault_key_provider: str = Field(
        default="adapters.vault_transit:VaultTransitKeyProvider",
        description="Import path of the Vault transit adapter")

    @model_validator(mode="after")
    def _check_key_provider(self) -> Self:
        if self.key_provider == "env" and not (self.kek and self.kek.get_secret_value()):
            raise ValueError("key_provider=env needs COORDINATOR_KEK")
        if self.key_provider == "vault":
            url = urlsplit(self.vault_addr or "")
            if not url.hostname or (url.scheme != "https" and not (
                    url.scheme == "http" and _is_loopback(url.hostname))):
                raise ValueError("key_provider=vault needs vault_addr, an https URL (http "
                                 "only on loopback)")
            if not (self.vault_token and self.vault_token.get_secret_value()):
                raise ValueError("key_provider=vault needs vault_token")
        return self

    @model_validator(mode="after")
    def _check_nav_webhook(self) -> Self:
        if self.nav_webhook_url is None:
            return self
        url = urlsplit(self.nav_webhook_url)
        if not url.hostname or (url.scheme != "https" and not (
                url.scheme == "http" and _is_loopback(url.hostname))):
            raise ValueError("nav_webhook_url must be an https URL (http only on loopback)")
        if not self.nav_webhook_secret or len(self.nav_webhook_secret) < 32:
            raise ValueError("nav_webhook_secret must be set, at least 32 characters, "
                             "when nav_webhook_url is")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'coordinator.db').resolve()}"

    @property
    def dev_issuer_active(self) -> bool:
        if self.dev_issuer_enabled is not None:
            return self.dev_issuer_enabled
        return self.resolved_database_url.startswith("sqlite")
