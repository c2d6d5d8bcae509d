"""Composition root: the one place that wires adapters to the core."""

from __future__ import annotations

import importlib
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta

from sqlalchemy import Engine

from coordinator.clock import SystemClock
from coordinator.config import Settings
from coordinator.crypto.audit_keys import Ed25519CheckpointSigner
from coordinator.crypto.envelope import AesGcmCipher
from coordinator.crypto.key_file import LocalFileKeyProvider, StaticKeyProvider
from coordinator.persistence.database import make_engine
from coordinator.persistence.mapping import start_mappers
from coordinator.persistence.reminders import SqlInbox, SqlOutboxStore
from coordinator.persistence.unit_of_work import SqlUnitOfWork
from coordinator.ports import (
    CheckpointSigner,
    Clock,
    DocumentCipher,
    KeyProvider,
    Notifier,
    OutboxStore,
    UnitOfWork,
)
from coordinator.scheduling.dispatcher import Dispatcher
from coordinator.scheduling.outbox import EMAIL, INAPP, NAV_WEBHOOK
from coordinator.service import Coordinator
from coordinator.workflows.registry import WorkflowRegistry


def build(settings: Settings | None = None, *, engine: Engine | None = None,
          clock: Clock | None = None, workflows: WorkflowRegistry | None = None,
          uow: Callable[[], UnitOfWork] | None = None,
          outbox_store: OutboxStore | None = None,
          channels: tuple[str, ...] | None = None,
          signer: CheckpointSigner | None = None,
          nav_webhook: bool | None = None,
          keys: KeyProvider | None = None,
          cipher: DocumentCipher | None = None) -> Coordinator:
    """Build a Coordinator. Overrides are for tests and benchmarks, not settings (B2 turns
    encryption and audit off with ``cipher``, ``keys`` and ``uow``; no setting can). The
    checkpoint signer's key and the KEK keyring live in ``settings.data_dir`` and are
    read (or made) on first use."""
    settings = settings or Settings()
    if uow is None:
        start_mappers()     # before any Case is built, so instances are instrumented
        engine = engine or make_engine(settings.resolved_database_url,
                                       pool_size=settings.pool_size)
        bound = engine
        outbox_store = outbox_store or SqlOutboxStore(bound)

        def uow() -> UnitOfWork:
            return SqlUnitOfWork(bound)

    if channels is None:
        channels = (EMAIL, INAPP) if settings.smtp_host else (INAPP,)
    return Coordinator(uow=uow, workflows=workflows or WorkflowRegistry.builtin(),
                       clock=clock or SystemClock(), channels=channels,
                       outbox_store=outbox_store,
                       signer=signer or Ed25519CheckpointSigner(settings.data_dir),
                       nav_webhook=bool(settings.nav_webhook_url) if nav_webhook is None
                       else nav_webhook,
                       keys=keys or build_key_provider(settings),
                       cipher=cipher or AesGcmCipher())


def email_notifier(settings: Settings) -> Notifier:
    """The e-mail adapter named in settings (``module:Class``), loaded by import path."""
    module, _, name = settings.email_notifier.partition(":")
    factory = getattr(importlib.import_module(module), name)
    notifier: Notifier = factory(
        settings.smtp_host, settings.smtp_port, sender=settings.smtp_sender,
        recipient_domain=settings.smtp_recipient_domain, starttls=settings.smtp_starttls,
        username=settings.smtp_username, password=settings.smtp_password)
    return notifier


def nav_notifier(settings: Settings) -> Notifier:
    """The Nav webhook adapter named in settings, loaded by import path."""
    module, _, name = settings.nav_webhook_notifier.partition(":")
    factory = getattr(importlib.import_module(module), name)
    notifier: Notifier = factory(settings.nav_webhook_url, settings.nav_webhook_secret or "")
    return notifier


def build_key_provider(settings: Settings) -> KeyProvider:
    """The key-encryption-key provider named by ``settings.key_provider``: the keyring file
    in ``data_dir`` (created on first use), the keys in COORDINATOR_KEK, or the Vault
    transit adapter, loaded by import path. Nothing is read or sent until first use."""
    if settings.key_provider == "env":
        assert settings.kek is not None  # noqa: S101 - the settings validator checks it
        return StaticKeyProvider.from_base64(settings.kek.get_secret_value())
    if settings.key_provider == "vault":
        module, _, name = settings.vault_key_provider.partition(":")
        factory = getattr(importlib.import_module(module), name)
        token = settings.vault_token.get_secret_value() if settings.vault_token else ""
        provider: KeyProvider = factory(settings.vault_addr, token, settings.vault_key,
                                        mount=settings.vault_mount,
                                        timeout=settings.vault_timeout_seconds)
        return provider
    return LocalFileKeyProvider(settings.data_dir)


def build_dispatcher(settings: Settings | None = None, *, engine: Engine | None = None,
                     clock: Clock | None = None, store: OutboxStore | None = None,
                     notifiers: Mapping[str, Notifier] | None = None,
                     faults: Callable[[str], None] | None = None,
                     worker: str | None = None) -> Dispatcher:
    """The outbox dispatcher of one worker process. ``faults`` is a test-only override."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    if store is None or notifiers is None:
        engine = engine or make_engine(settings.resolved_database_url,
                                       pool_size=settings.pool_size)
    if notifiers is None:
        assert engine is not None  # noqa: S101 - made just above
        chosen: dict[str, Notifier] = {INAPP: SqlInbox(engine, clock)}
        if settings.smtp_host:
            chosen[EMAIL] = email_notifier(settings)
        if settings.nav_webhook_url:
            chosen[NAV_WEBHOOK] = nav_notifier(settings)
        notifiers = chosen
    dispatcher = Dispatcher(
        store=store or SqlOutboxStore(engine),  # type: ignore[arg-type]
        notifiers=notifiers, clock=clock,
        worker=worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
        base_url=settings.public_base_url, batch_size=settings.worker_batch_size,
        lease=timedelta(seconds=settings.worker_lease_seconds),
        max_attempts=settings.worker_max_attempts)
    if faults is not None:
        dispatcher.faults = faults
    return dispatcher
