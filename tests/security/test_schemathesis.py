"""Property-based tests of the whole API from its OpenAPI document (schemathesis).

Every operation gets generated valid and invalid requests with a valid bearer token (a
nav_veileder on the team of one case with a fixed id, so that case paths meet a real case
now and then) against the real app on a migrated SQLite file. Checks: no 5xx, every status
code and content type is declared, every body and header matches its schema. Hypothesis
runs derandomized (a fixed seed) with a bounded number of examples per operation.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from coordinator.bootstrap import build
from coordinator.cases.commands import OpenCase
from coordinator.cases.model import SYSTEM, Actor
from coordinator.demo import referral
from coordinator.http.app import create_app
from coordinator.http.auth import Authenticator
from coordinator.persistence import migrate
from coordinator.persistence.database import make_engine
from coordinator.testing import FakeClock
from tests.e2e.test_auth import DevKey, settings_for

MAX_EXAMPLES = 25
KNOWN_CASE = uuid.UUID("00000000-0000-4000-8000-000000000001")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


class _Api:
    """The app under test, built once at import: schemathesis' pytest integration reads
    the schema when the module is collected (its lazy fixture loader does not work with
    the pytest this project runs). The data lives in a temporary directory removed at exit.
    """

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="coordinator-schemathesis-")
        tmp = Path(self._dir.name)
        clock = FakeClock()
        config = settings_for(tmp, auth_failure_limit=100_000)
        dev = DevKey(config.data_dir)
        self.engine = make_engine(f"sqlite:///{tmp / 'coordinator.db'}")
        migrate.upgrade(self.engine)
        coordinator = build(engine=self.engine, clock=clock)
        _channel, profile = referral("ringsaker", clock.now().date())
        coordinator.open_case(OpenCase("ringsaker", "fastlege", profile, SYSTEM,
                                       case_id=KNOWN_CASE, subject_id="person-1",
                                       team=(Actor("veileder-1", "nav_veileder"),)))
        self.app = create_app(coordinator, authenticator=Authenticator.from_settings(
            config, clock=clock))
        self.token = dev.token(clock.now().timestamp(), sub="veileder-1",
                               role="nav_veileder")


API = _Api()
schema = schemathesis.openapi.from_asgi("/openapi.json", API.app)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_openapi_promises(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {API.token}"}, checks=CHECKS)
