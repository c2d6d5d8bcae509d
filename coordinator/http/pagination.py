"""Paging helpers: every list endpoint answers one page and the URL of the next one.

Case lists page by keyset (``after`` = the last id seen), lists inside one case (history,
consents) by ``after`` seq or ``offset``. ``next`` is a relative URL (path and query) that
keeps the caller's other query parameters; null on the last page.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request

Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
DEFAULT_LIMIT = 50


def next_url(request: Request, **changes: object) -> str:
    """This request's path and query with ``changes`` applied."""
    params = dict(request.query_params)
    params.update({k: str(v) for k, v in changes.items()})
    return f"{request.url.path}?{urlencode(sorted(params.items()))}"
