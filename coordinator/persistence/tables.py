"""Core tables. Alembic migrations must produce exactly this metadata (a test checks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json: Any = JSON().with_variant(JSONB(), "postgresql")
BigId: Any = BigInteger().with_variant(Integer(), "sqlite")   # SQLite autoincrements INTEGER only

cases = Table(
    "cases", metadata,
    Column("id", Uuid, primary_key=True),
    Column("pilot", String(40), nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("state", String(40), nullable=False),
    Column("referrer", String(40), nullable=False),
    Column("referred_at", UTCDateTime, nullable=False),
    Column("profile_data", Json, nullable=False),
    Column("record_data", Json, nullable=False),
    Column("opened_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    Column("subject_id", String(200), nullable=True),
    Index(None, "pilot", "state"),
    Index(None, "pilot", "workflow_version"),
    Index(None, "subject_id"),
)

case_members = Table(
    "case_members", metadata,
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("actor_id", String(200), primary_key=True),     # unique (case_id, actor_id)
    Column("role", String(40), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    Column("added_by", String(200), nullable=False),
    Index(None, "actor_id", "role", "case_id"),
)

case_events = Table(
    "case_events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("actor_id", String(200), nullable=False),
    Column("actor_role", String(40), nullable=False),
    Column("from_state", String(40), nullable=True),
    Column("to_state", String(40), nullable=False),
    Column("trigger", String(60), nullable=True),
    Column("reason", Text, nullable=True),
    Column("workflow_key", String(40), nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("data", Json, nullable=False),
    UniqueConstraint("case_id", "seq"),
)

consents = Table(
    "consents", metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("purposes", Json, nullable=False),
    Column("categories", Json, nullable=False),
    Column("parties", Json, nullable=False),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("valid_to", UTCDateTime, nullable=True),
    Column("method", String(40), nullable=False),
    Column("form_version", String(60), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(200), nullable=False),
    Column("recorded_role", String(40), nullable=False),
    Column("pilot", String(40), nullable=True),
    Column("given_by", String(20), nullable=True),
    Column("guardian_ref", String(200), nullable=True),
    Column("witness_ref", String(200), nullable=True),
    Column("document_ref", String(200), nullable=True),
    Column("channel", String(20), nullable=True),
    Column("form_digest", String(64), nullable=True),
    Column("recorded_org", String(40), nullable=True),
    Index(None, "case_id", "recorded_at"),
    Index(None, "pilot", "recorded_at"),
)

# -- audit: one hash chain per stream (``case:<id>`` or ``system``), see coordinator/audit.
# No foreign keys to cases: the audit trail outlives a case's erasure.
audit_events = Table(
    "audit_events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("stream", String(60), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("case_id", Uuid, nullable=True),
    Column("person_key", String(200), nullable=True),
    Column("actor_id", String(200), nullable=False),
    Column("actor_role", String(40), nullable=False),
    Column("actor_org", String(40), nullable=True),
    Column("purpose", String(40), nullable=True),
    Column("category", String(40), nullable=True),
    Column("audience", String(40), nullable=True),
    Column("consent_id", Uuid, nullable=True),
    Column("outcome", String(20), nullable=False),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("stream", "seq"),
    Index(None, "person_key", "occurred_at"),       # a case's events: its stream's
    Index(None, "kind", "occurred_at"),
    Index(None, "occurred_at"),
)

audit_heads = Table(
    "audit_heads", metadata,
    Column("stream", String(60), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("stream_count", BigInteger, nullable=False),
    Column("event_count", BigInteger, nullable=False),
    Column("root", String(64), nullable=False),
    Column("delta_digest", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(100), nullable=False),
    Column("signature", String(256), nullable=False),
    Column("max_event_id", BigInteger, nullable=True),      # a read hint, not signed
)

audit_checkpoint_heads = Table(
    "audit_checkpoint_heads", metadata,
    Column("checkpoint_seq", Integer, ForeignKey("audit_checkpoints.seq", ondelete="CASCADE"),
           primary_key=True),
    Column("stream", String(60), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "stream", "seq"),
)

# -- referral intake, kartlegging, measures, therapy sessions (docs/referrals.md) ----------

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("source", String(200), primary_key=True),       # the caller the key belongs to
    Column("key", String(300), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(12), nullable=False),            # processing, done
    Column("created_at", UTCDateTime, nullable=False),
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), nullable=True),
    Column("response", Json, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
)

case_forms = Table(
    "case_forms", metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("questionnaire", String(300), nullable=False),
    Column("answers", Json, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(200), nullable=False),
    Column("recorded_role", String(40), nullable=False),
    Index(None, "case_id", "received_at"),
)

case_measures = Table(
    "case_measures", metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("instrument", String(20), nullable=False),
    Column("phase", String(10), nullable=False),
    Column("items", Json, nullable=False),
    Column("total", Integer, nullable=True),
    Column("band", String(30), nullable=True),
    Column("value", String(30), nullable=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(200), nullable=False),
    Column("recorded_role", String(40), nullable=False),
    UniqueConstraint("case_id", "instrument", "phase"),
)

therapy_sessions = Table(
    "therapy_sessions", metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("held_on", Date, nullable=False),
    Column("minutes", Integer, nullable=False),
    Column("kind", String(12), nullable=False),
    Column("therapist_id", String(200), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Index(None, "case_id", "held_on"),
)

meetings = Table(
    "meetings", metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("participants", Json, nullable=False),           # roles invited
    Column("status", String(20), nullable=False),           # scheduled, cancelled, held
    Column("sequence", Integer, nullable=False),            # iCalendar SEQUENCE
    Column("attendees", Json, nullable=True),               # roles present, once held
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "case_id", "starts_at"),
)

# Outbound messages, written in the same transaction as the change that causes them.
# Only the dispatcher sends them (docs/reminders.md).
outbox = Table(
    "outbox", metadata,
    Column("id", Uuid, primary_key=True),                   # also the e-mail Message-ID
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), nullable=True),
    Column("pilot", String(40), nullable=False),
    Column("meeting_id", Uuid, nullable=True),
    Column("source", String(10), nullable=False),           # rule (re-planned) or notice
    Column("key", String(200), nullable=False),             # what the row is about
    Column("kind", String(40), nullable=False),
    Column("channel", String(20), nullable=False),          # email, inapp
    Column("recipient", String(200), nullable=False),       # actor id
    Column("due_at", UTCDateTime, nullable=False),          # first due, then next retry
    Column("status", String(20), nullable=False),           # pending claimed sent dead cancelled
    Column("attempts", Integer, nullable=False),
    Column("claimed_by", String(100), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("payload", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Index(None, "status", "due_at"),
    Index(None, "case_id", "status"),
    Index(None, "meeting_id"),
)

# One row per delivered outbox row: the unique key makes "marked sent twice" impossible.
deliveries = Table(
    "deliveries", metadata,
    Column("outbox_id", Uuid, ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True),
    Column("delivered_at", UTCDateTime, nullable=False),
    Column("worker", String(100), nullable=False),
)

# The in-app inbox: what the in-app channel delivers, one row per outbox row.
inbox_messages = Table(
    "inbox_messages", metadata,
    Column("outbox_id", Uuid, primary_key=True),
    Column("recipient", String(200), nullable=False),
    Column("case_id", Uuid, nullable=True),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("link", String(500), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("read_at", UTCDateTime, nullable=True),
    Index(None, "recipient", "created_at"),
)

# Encrypted documents (docs/encryption.md). A data key is stored only wrapped by the key
# provider's KEK; a document only sealed under a data key. A document row names the key
# it is sealed under, so a key still in use cannot be deleted (the foreign key refuses).
data_keys = Table(
    "data_keys", metadata,
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("audience", String(10), primary_key=True),       # health, nav, shared
    Column("key_version", Integer, primary_key=True),
    Column("kek_id", String(100), nullable=False),
    Column("blob", LargeBinary, nullable=False),              # the wrapped data key
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "kek_id"),
)

documents = Table(
    "documents", metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("category", String(40), nullable=False),
    Column("owner", String(10), nullable=False),              # health, nav
    Column("audience", String(10), nullable=False),           # the data key's audience
    Column("revision", Integer, nullable=False),              # bound into the ciphertext
    Column("key_version", Integer, nullable=False),
    Column("sealed", LargeBinary, nullable=False),            # nonce || ciphertext || tag
    Column("digest", String(64), nullable=False),             # SHA-256 of sealed
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_role", String(40), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("row_version", Integer, nullable=False),           # optimistic lock
    ForeignKeyConstraint(["case_id", "audience", "key_version"],
                         ["data_keys.case_id", "data_keys.audience", "data_keys.key_version"]),
    Index(None, "case_id", "id"),
    Index(None, "case_id", "audience", "key_version"),
)

document_shares = Table(
    "document_shares", metadata,
    Column("document_id", Uuid, ForeignKey("documents.id", ondelete="CASCADE"),
           primary_key=True),
    Column("party", String(20), primary_key=True),
    Column("purpose", String(40), nullable=False),
    Column("consent_id", Uuid, nullable=True),
    Column("shared_at", UTCDateTime, nullable=False),
    Column("shared_by", String(200), nullable=False),
)

# A case whose data keys were destroyed: its documents answer "erased".
case_erasures = Table(
    "case_erasures", metadata,
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("erased_at", UTCDateTime, nullable=False),
    Column("erased_by", String(200), nullable=False),
)

# Runs of `coordinator keys rotate`; an unfinished run is resumed by the next one.
key_rotations = Table(
    "key_rotations", metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(20), nullable=False),               # rewrap, reencrypt
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
)
