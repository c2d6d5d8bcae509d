"""coordinator: consent-gated case coordination between Nav and health services.

The public API for library users: build a ``Coordinator`` with ``coordinator.bootstrap.build``
(or with fakes from ``coordinator.testing``) and call its use cases with the command objects.
Importing this package loads no database or web library; ``bootstrap`` does.
"""

from coordinator.cases.commands import (
    CaseSummary,
    CaseView,
    FireTrigger,
    GrantConsent,
    MigrationReport,
    OpenCase,
    WithdrawConsent,
)
from coordinator.cases.model import Actor
from coordinator.service import Coordinator
from coordinator.workflows.facts import Profile

__all__ = [
    "Actor", "CaseSummary", "CaseView", "Coordinator", "FireTrigger", "GrantConsent",
    "MigrationReport", "OpenCase", "Profile", "WithdrawConsent",
]
