"""Audit extracts: JSON Lines and CSV renderings of stored events (pure, text out).

Each JSON line carries the columns, the canonical body and both hashes, so an extract can
be re-verified on its own; the CSV holds the same columns with the body as one field."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from coordinator.audit.events import COLUMNS, SealedEvent, column_value

FIELDS = (*COLUMNS, "prev_hash", "hash", "body")


def _row(ev: SealedEvent) -> dict[str, object]:
    row: dict[str, object] = {name: column_value(name, ev.column(name)) for name in COLUMNS}
    row.update(prev_hash=ev.prev_hash, hash=ev.hash, body=ev.body)
    return row


def jsonl(events: Iterable[SealedEvent]) -> Iterator[str]:
    for ev in events:
        yield json.dumps(_row(ev), ensure_ascii=False, sort_keys=True) + "\n"


def csv_lines(events: Iterable[SealedEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    yield buffer.getvalue()
    for ev in events:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow({k: ("" if v is None else v) for k, v in _row(ev).items()})
        yield buffer.getvalue()
