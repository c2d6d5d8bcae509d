"""audit chains, checkpoints and the full consent record

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stream_count', sa.BigInteger(), nullable=False),
    sa.Column('event_count', sa.BigInteger(), nullable=False),
    sa.Column('root', sa.String(length=64), nullable=False),
    sa.Column('delta_digest', sa.String(length=64), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=100), nullable=False),
    sa.Column('signature', sa.String(length=256), nullable=False),
    sa.Column('max_event_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_checkpoints'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('stream', sa.String(length=60), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=True),
    sa.Column('person_key', sa.String(length=200), nullable=True),
    sa.Column('actor_id', sa.String(length=200), nullable=False),
    sa.Column('actor_role', sa.String(length=40), nullable=False),
    sa.Column('actor_org', sa.String(length=40), nullable=True),
    sa.Column('purpose', sa.String(length=40), nullable=True),
    sa.Column('category', sa.String(length=40), nullable=True),
    sa.Column('audience', sa.String(length=40), nullable=True),
    sa.Column('consent_id', sa.Uuid(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('stream', 'seq', name=op.f('uq_audit_events_stream_seq'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_case_id_occurred_at'), ['case_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_kind_occurred_at'), ['kind', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_person_key_occurred_at'), ['person_key', 'occurred_at'], unique=False)

    op.create_table('audit_heads',
    sa.Column('stream', sa.String(length=60), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('stream', name=op.f('pk_audit_heads'))
    )
    op.create_table('audit_checkpoint_heads',
    sa.Column('checkpoint_seq', sa.Integer(), nullable=False),
    sa.Column('stream', sa.String(length=60), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_seq'], ['audit_checkpoints.seq'], name=op.f('fk_audit_checkpoint_heads_checkpoint_seq_audit_checkpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('checkpoint_seq', 'stream', name=op.f('pk_audit_checkpoint_heads'))
    )
    with op.batch_alter_table('audit_checkpoint_heads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_checkpoint_heads_stream_seq'), ['stream', 'seq'], unique=False)

    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pilot', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('given_by', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('guardian_ref', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('witness_ref', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('document_ref', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('form_digest', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('recorded_org', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_consents_pilot_recorded_at'), ['pilot', 'recorded_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consents_pilot_recorded_at'))
        batch_op.drop_column('recorded_org')
        batch_op.drop_column('form_digest')
        batch_op.drop_column('channel')
        batch_op.drop_column('document_ref')
        batch_op.drop_column('witness_ref')
        batch_op.drop_column('guardian_ref')
        batch_op.drop_column('given_by')
        batch_op.drop_column('pilot')

    with op.batch_alter_table('audit_checkpoint_heads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_checkpoint_heads_stream_seq'))

    op.drop_table('audit_checkpoint_heads')
    op.drop_table('audit_heads')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_person_key_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_audit_events_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_audit_events_kind_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_audit_events_case_id_occurred_at'))

    op.drop_table('audit_events')
    op.drop_table('audit_checkpoints')
