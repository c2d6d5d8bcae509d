"""Pilot workflow definitions: list, detail of the latest version, state diagrams.

Definitions are public configuration (no case data), so these need no authentication.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse

from coordinator.http.deps import CoordinatorDep
from coordinator.http.errors import PROBLEM_JSON
from coordinator.http.schemas import PilotPage, PilotRead, PilotSummaryRead, ProblemRead
from coordinator.workflows import diagrams
from coordinator.workflows.registry import WorkflowRegistry

router = APIRouter(prefix="/api/v1/pilots", tags=["pilots"])

_PROBLEMS: dict[int | str, dict[str, object]] = {
    404: {"model": ProblemRead, "content": {PROBLEM_JSON: {}}, "description": "Unknown pilot"},
    422: {"model": ProblemRead, "content": {PROBLEM_JSON: {}},
          "description": "Invalid parameters"},
}
PilotKey = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$", examples=["ringsaker"])]


def versions_of(registry: WorkflowRegistry, key: str) -> list[int]:
    return sorted(wf.definition.version for wf in registry.all() if wf.definition.key == key)


@router.get("", response_model=PilotPage, responses=_PROBLEMS)
def list_pilots(coordinator: CoordinatorDep,
                limit: Annotated[int, Query(ge=1, le=100)] = 50,
                offset: Annotated[int, Query(ge=0)] = 0) -> PilotPage:
    """The pilots, ordered by key, with their definition versions."""
    registry = coordinator.workflows
    keys = registry.keys()
    items = []
    for key in keys[offset:offset + limit]:
        latest = registry.latest(key).definition
        items.append(PilotSummaryRead(key=key, title=latest.title, model=latest.model,
                                      latest_version=latest.version,
                                      versions=versions_of(registry, key)))
    return PilotPage(items=items, total=len(keys), limit=limit, offset=offset)


@router.get("/{key}", response_model=PilotRead, responses=_PROBLEMS)
def get_pilot(key: PilotKey, coordinator: CoordinatorDep) -> PilotRead:
    """The latest definition version of a pilot. Raises 404 for an unknown pilot."""
    registry = coordinator.workflows
    definition = registry.latest(key).definition
    return PilotRead.of(definition, versions_of(registry, key))


@router.get("/{key}/versions/{version}/diagram", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}},
                             "description": "A mermaid stateDiagram-v2 (or plain text)"},
                       **_PROBLEMS})
def get_diagram(key: PilotKey, version: Annotated[int, Path(ge=1)],
                coordinator: CoordinatorDep,
                fmt: Annotated[Literal["mermaid", "text"], Query(alias="format")] = "mermaid",
                ) -> PlainTextResponse:
    """The state diagram of one definition version."""
    definition = coordinator.workflows.get(key, version).definition
    render = diagrams.mermaid if fmt == "mermaid" else diagrams.text
    return PlainTextResponse(render(definition))
