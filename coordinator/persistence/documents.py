"""Encrypted documents, wrapped data keys, erasure markers and rotation runs (Core SQL on
the unit of work's session: every write is part of its transaction).

Document updates are version-checked (``WHERE row_version = :read``); a data key still
named by a document cannot be deleted (the foreign key refuses, and ``destroy`` skips it).
After an erasure commits on SQLite, the WAL is checkpointed and truncated, so the
destroyed keys' old pages do not linger in ``-wal`` (the file itself runs with
``secure_delete``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    event,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coordinator.cases.document_model import DataKey, Document, Erasure, Rotation, Share
from coordinator.errors import ConcurrentUpdate, DocumentNotFound, KeyUnavailable
from coordinator.persistence.tables import (
    case_erasures,
    data_keys,
    document_shares,
    documents,
    key_rotations,
)

documents_t = documents        # (``reseal`` has a parameter of that name)
d, k, s = documents.c, data_keys.c, document_shares.c


def _document(r: Any, shares: Sequence[Share]) -> Document:
    return Document(r["id"], r["case_id"], r["kind"], r["category"], r["owner"],
                    r["audience"], r["revision"], r["key_version"], bytes(r["sealed"]),
                    r["digest"], r["created_at"], r["created_by"], r["created_role"],
                    r["updated_at"], r["row_version"], tuple(shares))


def _row(doc: Document) -> dict[str, Any]:
    return {"id": doc.id, "case_id": doc.case_id, "kind": doc.kind, "category": doc.category,
            "owner": doc.owner, "audience": doc.audience, "revision": doc.revision,
            "key_version": doc.key_version, "sealed": doc.sealed, "digest": doc.digest,
            "created_at": doc.created_at, "created_by": doc.created_by,
            "created_role": doc.created_role, "updated_at": doc.updated_at,
            "row_version": doc.row_version}


def _share_rows(doc: Document) -> list[dict[str, Any]]:
    return [{"document_id": doc.id, "party": x.party, "purpose": x.purpose,
             "consent_id": x.consent_id, "shared_at": x.shared_at, "shared_by": x.shared_by}
            for x in doc.shares]


def _key(r: Any) -> DataKey:
    return DataKey(r["case_id"], r["audience"], r["key_version"], r["kek_id"], bytes(r["blob"]),
                   r["created_at"])


class SqlDocumentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _load(self, rows: Sequence[Any]) -> list[Document]:
        if not rows:
            return []
        found: dict[UUID, list[Share]] = {}
        for r in self.session.connection().execute(
                select(document_shares).where(s.document_id.in_([r["id"] for r in rows]))
                .order_by(s.document_id, s.party)).mappings():
            found.setdefault(r["document_id"], []).append(Share(
                r["document_id"], r["party"], r["purpose"], r["consent_id"], r["shared_at"],
                r["shared_by"]))
        return [_document(r, found.get(r["id"], ())) for r in rows]

    def add(self, document: Document) -> None:
        conn = self.session.connection()
        conn.execute(insert(documents).values(_row(document)))
        if document.shares:
            conn.execute(insert(document_shares), _share_rows(document))

    def get(self, document_id: UUID) -> Document:
        rows = list(self.session.connection().execute(
            select(documents).where(d.id == document_id)).mappings())
        if not rows:
            raise DocumentNotFound(document_id)
        return self._load(rows)[0]

    def for_case(self, case_id: UUID, *, after: UUID | None = None,
                 limit: int = 50) -> Sequence[Document]:
        q = select(documents).where(d.case_id == case_id).order_by(d.id).limit(limit)
        if after is not None:
            q = q.where(d.id > after)
        return self._load(list(self.session.connection().execute(q).mappings()))

    def replace(self, document: Document, expected_row_version: int) -> None:
        conn = self.session.connection()
        values = {k_: v for k_, v in _row(document).items() if k_ != "id"}
        done = conn.execute(update(documents).where(
            d.id == document.id, d.row_version == expected_row_version).values(values))
        if done.rowcount != 1:
            raise ConcurrentUpdate()
        conn.execute(delete(document_shares).where(s.document_id == document.id))
        if document.shares:
            conn.execute(insert(document_shares), _share_rows(document))

    def reseal(self, documents: Sequence[Document]) -> int:
        if not documents:
            return 0
        stmt = update(documents_t).where(
            d.id == bindparam("b_id"), d.row_version == bindparam("b_read")
        ).values(key_version=bindparam("b_key"), sealed=bindparam("b_sealed"),
                 digest=bindparam("b_digest"), row_version=bindparam("b_row"),
                 audience=bindparam("b_audience"))
        return _many(self.session, stmt, [
            {"b_id": x.id, "b_read": x.row_version - 1, "b_key": x.key_version,
             "b_sealed": x.sealed, "b_digest": x.digest, "b_row": x.row_version,
             "b_audience": x.audience} for x in documents])

    def _stale(self) -> Any:
        newest = select(func.max(k.key_version)).where(
            k.case_id == d.case_id, k.audience == d.audience).scalar_subquery()
        return d.key_version < newest

    def stale(self, *, limit: int, after: UUID | None = None) -> Sequence[Document]:
        q = select(documents).where(self._stale()).order_by(d.id).limit(limit)
        if after is not None:
            q = q.where(d.id > after)
        return self._load(list(self.session.connection().execute(q).mappings()))

    def count_stale(self) -> int:
        return int(self.session.connection().execute(
            select(func.count()).select_from(documents).where(self._stale())).scalar_one())

    def erase(self, case_id: UUID) -> int:
        conn = self.session.connection()
        conn.execute(delete(document_shares).where(s.document_id.in_(
            select(d.id).where(d.case_id == case_id))))
        gone = conn.execute(delete(documents).where(d.case_id == case_id)).rowcount
        _truncate_wal_after_commit(self.session)
        return int(gone)

    def erasure(self, case_id: UUID) -> Erasure | None:
        r = self.session.connection().execute(
            select(case_erasures).where(case_erasures.c.case_id == case_id)).mappings().first()
        return None if r is None else Erasure(r["case_id"], r["erased_at"], r["erased_by"])

    def mark_erased(self, erasure: Erasure) -> None:
        try:
            with self.session.begin_nested():
                self.session.connection().execute(insert(case_erasures).values(
                    case_id=erasure.case_id, erased_at=erasure.erased_at,
                    erased_by=erasure.erased_by))
        except IntegrityError:
            raise ConcurrentUpdate() from None


class SqlDataKeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def newest(self, case_id: UUID, audience: str) -> DataKey | None:
        r = self.session.connection().execute(
            select(data_keys).where(k.case_id == case_id, k.audience == audience)
            .order_by(k.key_version.desc()).limit(1)).mappings().first()
        return None if r is None else _key(r)

    def get(self, case_id: UUID, audience: str, key_version: int) -> DataKey:
        r = self.session.connection().execute(select(data_keys).where(
            k.case_id == case_id, k.audience == audience,
            k.key_version == key_version)).mappings().first()
        if r is None:
            raise KeyUnavailable(f"data key {audience} v{key_version} of case {case_id} "
                                 f"does not exist", case_id=str(case_id))
        return _key(r)

    def for_cases(self, case_ids: Iterable[UUID]) -> Sequence[DataKey]:
        wanted = list(set(case_ids))
        if not wanted:
            return []
        return [_key(r) for r in self.session.connection().execute(
            select(data_keys).where(k.case_id.in_(wanted))).mappings()]

    def add(self, key: DataKey) -> bool:
        try:
            with self.session.begin_nested():       # a savepoint: PG survives the conflict
                self.session.connection().execute(insert(data_keys).values(
                    case_id=key.case_id, audience=key.audience, key_version=key.key_version,
                    kek_id=key.kek_id, blob=key.blob, created_at=key.created_at))
        except IntegrityError:
            return False
        return True

    def rewrap(self, rewrapped: Sequence[tuple[DataKey, str, bytes]]) -> int:
        if not rewrapped:
            return 0
        stmt = update(data_keys).where(
            k.case_id == bindparam("b_case"), k.audience == bindparam("b_audience"),
            k.key_version == bindparam("b_version"), k.kek_id == bindparam("b_old")
        ).values(kek_id=bindparam("b_kek"), blob=bindparam("b_blob"))
        return _many(self.session, stmt, [
            {"b_case": key.case_id, "b_audience": key.audience, "b_version": key.key_version,
             "b_old": key.kek_id, "b_kek": kek, "b_blob": blob} for key, kek, blob in rewrapped])

    def not_under(self, kek_id: str, *, limit: int,
                  after: tuple[UUID, str, int] | None = None) -> Sequence[DataKey]:
        q = select(data_keys).where(k.kek_id != kek_id).order_by(
            k.case_id, k.audience, k.key_version).limit(limit)
        if after is not None:
            q = q.where(tuple_(k.case_id, k.audience, k.key_version) > tuple_(*after))
        return [_key(r) for r in self.session.connection().execute(q).mappings()]

    def count_not_under(self, kek_id: str) -> int:
        return int(self.session.connection().execute(
            select(func.count()).select_from(data_keys).where(k.kek_id != kek_id)).scalar_one())

    def kek_ids(self) -> set[str]:
        return set(self.session.connection().execute(select(k.kek_id).distinct()).scalars())

    def _newest_before(self, moment: datetime) -> Any:
        newer = data_keys.alias("newer")
        return and_(k.created_at < moment, ~exists().where(
            newer.c.case_id == k.case_id, newer.c.audience == k.audience,
            newer.c.key_version > k.key_version))

    def created_before(self, moment: datetime, *, limit: int,
                       after: tuple[UUID, str] | None = None) -> Sequence[DataKey]:
        q = select(data_keys).where(self._newest_before(moment)).order_by(
            k.case_id, k.audience).limit(limit)
        if after is not None:
            q = q.where(tuple_(k.case_id, k.audience) > tuple_(*after))
        return [_key(r) for r in self.session.connection().execute(q).mappings()]

    def count_created_before(self, moment: datetime) -> int:
        return int(self.session.connection().execute(
            select(func.count()).select_from(data_keys)
            .where(self._newest_before(moment))).scalar_one())

    def superseded(self, *, limit: int) -> Sequence[DataKey]:
        newer = data_keys.alias("newer")
        return [_key(r) for r in self.session.connection().execute(
            select(data_keys).where(
                exists().where(newer.c.case_id == k.case_id, newer.c.audience == k.audience,
                               newer.c.key_version > k.key_version),
                ~exists().where(d.case_id == k.case_id, d.audience == k.audience,
                                d.key_version == k.key_version))
            .order_by(k.case_id, k.audience, k.key_version).limit(limit)).mappings()]

    def destroy(self, case_id: UUID, audience: str | None = None,
                below: int | None = None) -> int:
        q = delete(data_keys).where(k.case_id == case_id, ~exists().where(
            d.case_id == k.case_id, d.audience == k.audience, d.key_version == k.key_version))
        if audience is not None:
            q = q.where(k.audience == audience)
        if below is not None:
            q = q.where(k.key_version < below)
        return int(self.session.connection().execute(q).rowcount)

    def open_rotation(self, kind: str) -> Rotation | None:
        r = self.session.connection().execute(
            select(key_rotations).where(key_rotations.c.kind == kind,
                                        key_rotations.c.finished_at.is_(None))
            .order_by(key_rotations.c.started_at).limit(1)).mappings().first()
        return None if r is None else Rotation(r["id"], r["kind"], r["started_at"],
                                               r["finished_at"])

    def start_rotation(self, rotation: Rotation) -> None:
        self.session.connection().execute(insert(key_rotations).values(
            id=rotation.id, kind=rotation.kind, started_at=rotation.started_at))

    def finish_rotation(self, rotation_id: UUID, at: datetime) -> None:
        self.session.connection().execute(update(key_rotations).where(
            key_rotations.c.id == rotation_id).values(finished_at=at))


def _many(session: Session, stmt: Any, rows: list[dict[str, Any]]) -> int:
    """An executemany; how many rows it changed (counted one by one where the driver
    cannot sum them)."""
    conn = session.connection()
    if conn.dialect.supports_sane_multi_rowcount:
        return int(conn.execute(stmt, rows).rowcount)
    return sum(int(conn.execute(stmt, row).rowcount) for row in rows)


def _truncate_wal_after_commit(session: Session) -> None:
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    if engine.dialect.name != "sqlite":
        return

    def checkpoint(_session: Session) -> None:
        raw = engine.raw_connection()       # autocommit: a checkpoint needs no transaction
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()

    event.listen(session, "after_commit", checkpoint, once=True)
