"""drop audit_events (case_id, occurred_at): a case's events are its stream's

Every audit event of a case is on the stream ``case:<id>``, so the unique
``(stream, seq)`` index already finds them; the extra index cost a page write per
event (about a tenth of a transition on SQLite) and ~100 bytes of storage per event.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_case_id_occurred_at'))


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_case_id_occurred_at'),
                              ['case_id', 'occurred_at'], unique=False)
