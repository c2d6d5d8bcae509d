"""Composition root: the one place that wires adapters to the core."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from coordinator.clock import SystemClock
from coordinator.config import Settings
from coordinator.crypto.audit_keys import Ed25519CheckpointSigner
from coordinator.persistence.database import make_engine
from coordinator.persistence.mapping import start_mappers
from coordinator.persistence.unit_of_work import SqlUnitOfWork
from coordinator.ports import CheckpointSigner, Clock, UnitOfWork
from coordinator.service import Coordinator
from coordinator.workflows.registry import WorkflowRegistry


def build(settings: Settings | None = None, *, engine: Engine | None = None,
          clock: Clock | None = None, workflows: WorkflowRegistry | None = None,
          uow: Callable[[], UnitOfWork] | None = None,
          signer: CheckpointSigner | None = None) -> Coordinator:
    """Build a Coordinator. Overrides are for tests and benchmarks, not settings. The
    checkpoint signer's key lives in ``settings.data_dir`` and is read on first use."""
    settings = settings or Settings()
    if uow is None:
        start_mappers()     # before any Case is built, so instances are instrumented
        engine = engine or make_engine(settings.resolved_database_url,
                                       pool_size=settings.pool_size)
        bound = engine

        def uow() -> UnitOfWork:
            return SqlUnitOfWork(bound)

    return Coordinator(uow=uow, workflows=workflows or WorkflowRegistry.builtin(),
                       clock=clock or SystemClock(),
                       signer=signer or Ed25519CheckpointSigner(settings.data_dir))
