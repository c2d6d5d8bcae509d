"""State diagrams of a definition: mermaid ``stateDiagram-v2`` and plain text."""

from __future__ import annotations

from coordinator.workflows.definition import WorkflowDefinition


def _edges(d: WorkflowDefinition) -> list[tuple[str, str, str]]:
    edges: list[tuple[str, str, str]] = []
    for t in d.transitions:
        guards = ", ".join(g.label() for g in t.guards)
        label = f"{t.trigger} [{guards}]" if guards else t.trigger
        edges.extend((s, t.dest or s, label) for s in t.sources)
    return edges


def mermaid(d: WorkflowDefinition) -> str:
    lines = ["stateDiagram-v2", f"    %% {d.key} v{d.version}: {d.title}",
             f"    [*] --> {d.initial}"]
    lines += [f"    {s} --> {dst}: {label}" for s, dst, label in _edges(d)]
    lines += [f"    {s} --> [*]" for s in d.final]
    return "\n".join(lines) + "\n"


def text(d: WorkflowDefinition) -> str:
    lines = [f"{d.key} v{d.version} (model {d.model}): {d.title}",
             f"states: {', '.join(d.states)}", f"start: {d.initial}; final: {', '.join(d.final)}"]
    lines += [f"  {s:<12} --{label}--> {dst}" for s, dst, label in _edges(d)]
    return "\n".join(lines) + "\n"
