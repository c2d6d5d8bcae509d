"""Encrypted case documents over ``Coordinator.documents`` (docs/encryption.md).

The text of a document leaves only through ``GET .../documents/{id}``, and only when the
gate lets the caller read it now (the read is audited first). The list gives metadata,
never text. A document of an erased case answers 410.

- ``POST /api/v1/cases/{id}/documents``: write a document of the caller's side
- ``GET /api/v1/cases/{id}/documents``: metadata of the documents the caller may read
- ``GET /api/v1/cases/{id}/documents/{document_id}``: one document with its text
- ``PUT /api/v1/cases/{id}/documents/{document_id}``: a new revision (owner side)
- ``POST /api/v1/cases/{id}/documents/{document_id}/shares``: share with a party of the
  other side (needs a live consent)
- ``DELETE /api/v1/cases/{id}/documents/{document_id}/shares/{party}``: revoke a share
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from coordinator.cases.document_model import MAX_TEXT, Document, Share
from coordinator.http.auth import CurrentActor
from coordinator.http.deps import CoordinatorDep
from coordinator.http.pagination import DEFAULT_LIMIT, Limit, next_url
from coordinator.http.routers._problems import problems

router = APIRouter(prefix="/api/v1", tags=["documents"])

Kind = Literal["kartleggingsskjema", "mestringsplan", "session_summary", "note", "message"]
Category = Literal["contact_info", "kartlegging", "mestringsplan", "session_summary",
                   "work_status", "outcome_scores", "meeting_notes"]
Party = Literal["nav", "rph", "therapist", "fastlege"]
Purpose = Literal["coordination", "share_kartlegging", "share_mestringsplan",
                  "share_session_summaries", "employer_contact", "research"]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DocumentWrite(_Model):
    kind: Kind
    category: Category = Field(description="A data category of the writer's own side")
    text: Text


class DocumentUpdate(_Model):
    text: Text
    expected_revision: int | None = Field(default=None, ge=1,
                                          description="Refused (412) if not the current one")


class ShareWrite(_Model):
    party: Party
    purpose: Purpose | None = Field(default=None, description="Default: the category's "
                                    "share purpose (share_kartlegging, …) or coordination")


class ShareRead(_Model):
    party: str
    purpose: str
    consent_id: UUID | None
    shared_at: datetime
    shared_by: str

    @classmethod
    def of(cls, s: Share) -> ShareRead:
        return cls(party=s.party, purpose=s.purpose, consent_id=s.consent_id,
                   shared_at=s.shared_at, shared_by=s.shared_by)


class DocumentRead(_Model):
    """Metadata; ``text`` only in the answer of a granted read of this one document."""

    id: UUID
    case_id: UUID
    kind: str
    category: str
    owner: Literal["health", "nav"]
    audience: Literal["health", "nav", "shared"]
    revision: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    shares: list[ShareRead]
    text: str | None = None

    @classmethod
    def of(cls, d: Document, text: str | None = None) -> DocumentRead:
        return cls(id=d.id, case_id=d.case_id, kind=d.kind, category=d.category,
                   owner=d.owner,  # type: ignore[arg-type]
                   audience=d.audience,  # type: ignore[arg-type]
                   revision=d.revision, created_at=d.created_at, created_by=d.created_by,
                   updated_at=d.updated_at, shares=[ShareRead.of(s) for s in d.shares],
                   text=text)


class DocumentPage(_Model):
    items: list[DocumentRead]
    next: str | None


@router.post("/cases/{case_id}/documents", response_model=DocumentRead,
             status_code=status.HTTP_201_CREATED,
             responses=problems(403, 404, 410, body=True))
def write_document(case_id: UUID, body: DocumentWrite, actor: CurrentActor,
                   coordinator: CoordinatorDep) -> DocumentRead:
    """Write a document of the caller's side (team members; the text is stored only
    encrypted under the side's data key)."""
    doc = coordinator.documents.write(case_id, actor=actor, kind=body.kind,
                                      category=body.category, text=body.text)
    return DocumentRead.of(doc)


@router.get("/cases/{case_id}/documents", response_model=DocumentPage,
            responses=problems(403, 404, 410))
def list_documents(case_id: UUID, actor: CurrentActor, coordinator: CoordinatorDep,
                   request: Request, after: UUID | None = None,
                   limit: Limit = DEFAULT_LIMIT) -> DocumentPage:
    """Metadata (no text) of the documents the caller could read: its side's own and
    those shared with its party; the person sees all of their own case's."""
    items = coordinator.documents.list(case_id, actor=actor, after=after, limit=limit)
    more = next_url(request, after=items[-1].id) if len(items) == limit else None
    return DocumentPage(items=[DocumentRead.of(d) for d in items], next=more)


@router.get("/cases/{case_id}/documents/{document_id}", response_model=DocumentRead,
            responses=problems(403, 404, 410))
def read_document(case_id: UUID, document_id: UUID, actor: CurrentActor,
                  coordinator: CoordinatorDep) -> DocumentRead:
    """The document with its text, if the gate allows it now: the owner side and the
    person always; the other side only when shared with its party and under a live
    consent (403 otherwise). The read is in the person's access log."""
    got = coordinator.documents.read(case_id, document_id, actor=actor)
    return DocumentRead.of(got.document, got.text)


@router.put("/cases/{case_id}/documents/{document_id}", response_model=DocumentRead,
            responses=problems(403, 404, 410, 412, body=True))
def update_document(case_id: UUID, document_id: UUID, body: DocumentUpdate,
                    actor: CurrentActor, coordinator: CoordinatorDep) -> DocumentRead:
    """A new revision of the text (the owner side)."""
    doc = coordinator.documents.update(case_id, document_id, actor=actor, text=body.text,
                                       expected_revision=body.expected_revision)
    return DocumentRead.of(doc)


@router.post("/cases/{case_id}/documents/{document_id}/shares", response_model=ShareRead,
             status_code=status.HTTP_201_CREATED,
             responses=problems(403, 404, 410, body=True))
def share_document(case_id: UUID, document_id: UUID, body: ShareWrite, actor: CurrentActor,
                   coordinator: CoordinatorDep) -> ShareRead:
    """Share with a party of the other side (the owner side; needs a live consent for
    the purpose, the category and the party, else 403)."""
    return ShareRead.of(coordinator.documents.share(case_id, document_id, actor=actor,
                                                    party=body.party, purpose=body.purpose))


@router.delete("/cases/{case_id}/documents/{document_id}/shares/{party}",
               status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               responses=problems(403, 404, 410))
def revoke_share(case_id: UUID, document_id: UUID,
                 party: Annotated[Party, Path(description="The party shared with")],
                 actor: CurrentActor, coordinator: CoordinatorDep) -> Response:
    """Revoke a share (the owner side): the party's next read is refused."""
    coordinator.documents.revoke(case_id, document_id, party, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
